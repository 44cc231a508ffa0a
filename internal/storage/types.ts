import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RootfsMountSchema } from "../../api/gen/beetroot/guest/v1/task_pb.ts";
import type { Mount } from "../../api/gen/containerd/types/mount_pb.ts";

/** A host file the VM must get as a virtio-blk disk for this rootfs. */
export interface RootfsDisk {
  readonly path: string;
  readonly serial: string;
  readonly readOnly: boolean;
}

export type GuestRootfsMount = MessageInitShape<typeof RootfsMountSchema>;

/** containerd mounts, rewritten so the guest can assemble them without ever seeing a host path. */
export interface TranslatedRootfs {
  readonly disks: readonly RootfsDisk[];
  readonly mounts: readonly GuestRootfsMount[];
  /** Drops this container's references (cached images stay in the cache for the next container). */
  release(): Promise<void>;
}

export interface TranslateRequest {
  readonly containerId: string;
  readonly mounts: readonly Mount[];
  /** Hands out virtio-blk serials unique within the VM. */
  readonly allocateSerial: () => string;
}

/** containerd rootfs mounts → disks + guest mount descriptions (see docs/storage.md). */
export interface MountTranslator {
  translate(req: TranslateRequest): Promise<TranslatedRootfs>;
}

/** Thrown for a mount the translator cannot hand to a VM; the task service maps it to InvalidArgument. */
export class UnsupportedMountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedMountError";
  }
}
