import type { Duplex } from "node:stream";
import type { Logger } from "../log/logger.ts";
import type { GuestClient } from "./guest-client.ts";

/** A disk the VM gets at boot as virtio-blk; the guest finds it by `serial`. */
export interface VmDisk {
  readonly path: string;
  /** virtio-blk serial (≤ 20 bytes), e.g. `br-3`. */
  readonly serial: string;
  readonly readOnly: boolean;
}

export interface VmRequest {
  /** VM id: names its run dir and its resource ledger (`vm-<id>`, see internal/state). */
  readonly id: string;
  readonly cpus: number;
  readonly memoryMib: number;
  readonly disks: readonly VmDisk[];
  /** Network namespace the pod's interfaces live in (CNI already ran), when there is one. */
  readonly netnsPath?: string;
  readonly log: Logger;
}

/** A guest → host vsock port the host listens on (`<vsock uds>_<port>`). */
export interface VsockListener {
  readonly port: number;
  /** The guest's connection; rejects when the listener is closed first. */
  accept(): Promise<Duplex>;
  close(): void;
}

/** One running micro-VM with vminitd answering. */
export interface Vm {
  readonly guest: GuestClient;
  /** Host pid of the VMM (QEMU), for logs. */
  readonly pid: number;
  listenVsock(port: number): Promise<VsockListener>;
  /** Powers the VM off (guest shutdown, then SIGKILL after a grace) and releases its host resources. */
  stop(opts?: { graceSeconds?: number }): Promise<void>;
  /** Settles when the VMM process is gone, however that happened. */
  readonly exited: Promise<void>;
}

/** The VMM seam: the real one boots QEMU (internal/vm); unit tests pass a fake. */
export interface Vmm {
  launch(req: VmRequest): Promise<Vm>;
}
