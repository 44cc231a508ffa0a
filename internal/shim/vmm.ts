import type { Duplex } from "node:stream";
import type { Logger } from "../log/logger.ts";
import type { Volume } from "../volumes/plan.ts";
import type { GuestClient } from "./guest-client.ts";
import type { OciSpec } from "./oci.ts";

/** A disk the VM gets at boot as virtio-blk; the guest finds it by `serial`. */
export interface VmDisk {
  readonly path: string;
  /** virtio-blk serial (≤ 20 bytes), e.g. `br-3`. */
  readonly serial: string;
  readonly readOnly: boolean;
}

export interface VmRequest {
  /**
   * VM id: names its run dir and its resource ledger (`vm-<id>`, see internal/state), and is the
   * pod network's CNI_CONTAINERID — unique on the host, where a `ctr run` id is unique only within one
   * containerd and namespace (two `bench-rss` in two containerds collide in host-local's IPAM).
   */
  readonly id: string;
  readonly cpus: number;
  readonly memoryMib: number;
  readonly disks: readonly VmDisk[];
  /** Boot with a volume share, so this and later containers can be given host paths. */
  readonly volumes?: boolean;
  /**
   * The OCI spec of the pod's first (sandbox) container. Its `linux.namespaces` network entry decides
   * the VM's network (docs/network.md): no path → managed (netns + CNI made here), a path → attach
   * (CRI ran CNI there), no entry → refused (a VM cannot share the host's network stack).
   */
  readonly spec: OciSpec;
  readonly log: Logger;
}

/** Where the VM's NICs are spliced in on the host. */
export interface VmNetwork {
  readonly mode: "managed" | "attach";
  /** The pod network namespace on the host (made by beetroot in managed mode). */
  readonly netns: string;
  /** Addresses of the pod interfaces, `10.123.0.7/16` style, for logs. */
  readonly addresses: readonly string[];
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
  /** The pod network the VM's NICs are on; absent for a VMM without networking (unit-test fakes). */
  readonly network?: VmNetwork;
  listenVsock(port: number): Promise<VsockListener>;
  /**
   * Gives the running VM more read-only disks, found by the guest under their serials (a container
   * joining its pod with image layers the VM does not have yet). Absent: the VMM cannot, and such a
   * join is refused. All or nothing: on failure no disk of `disks` stays attached.
   */
  attachDisks?(disks: readonly VmDisk[]): Promise<void>;
  /** Takes attached disks away once their container is gone; serials never attached are done. */
  detachDisks?(serials: readonly string[]): Promise<void>;
  /**
   * Gives the running VM a host path under `name` in its volume share (VmRequest.volumes); the
   * guest finds it at /run/beetroot/volumes/<name>. Absent: the VMM has no volumes. Resolves to
   * the volume's release.
   */
  addVolume?(name: string, volume: Volume): Promise<() => Promise<void>>;
  /**
   * Powers the VM off (guest shutdown, then SIGKILL after a grace) and releases its host resources,
   * the pod network last (TAPs, CNI DEL, namespace). `graceSeconds: 0`: no guest shutdown, the VMM
   * is killed at once (its last container is gone: nothing in the guest needs stopping).
   */
  stop(opts?: { graceSeconds?: number }): Promise<void>;
  /** Settles when the VMM process is gone, however that happened, and its host resources are released. */
  readonly exited: Promise<void>;
}

/** The VMM seam: the real one boots QEMU (internal/vm); unit tests pass a fake. */
export interface Vmm {
  launch(req: VmRequest): Promise<Vm>;
}
