import type { Mount } from "../../api/gen/containerd/types/mount_pb.ts";
import type { Logger } from "../log/logger.ts";
import type { GuestRootfsMount, MountTranslator, TranslatedRootfs } from "../storage/types.ts";
import { UnsupportedMountError } from "../storage/types.ts";
import type { Volume } from "../volumes/plan.ts";
import { CleanupStack } from "./cleanup.ts";
import {
  alreadyExists,
  errorMessage,
  failedPrecondition,
  invalidArgument,
  notFound,
  wrapError,
} from "./errors.ts";
import type { GuestClient } from "./guest-client.ts";
import { JsonObject, parseLossless, serializeLossless } from "./lossless-json.ts";
import { groupIdOf, type OciSpec, podRoleOf } from "./oci.ts";
import { podVmId } from "./pod-id.ts";
import { containerVolumes, type SharedVolumes, shareVolumes, specWithVolumes } from "./pod-volumes.ts";
import { type VmDefaults, vmSizeFor } from "./vm-size.ts";
import type { Vm, VmDisk, Vmm, VmNetwork, VsockListener } from "./vmm.ts";

/** What one container gets from its pod: the VM's guest API, its rootfs as the guest sees it, vsock. */
export interface ContainerSandbox {
  readonly podId: string;
  readonly guest: GuestClient;
  readonly rootfs: readonly GuestRootfsMount[];
  /** Host pid of the VMM running this container. */
  readonly vmPid: number;
  /** Listens on a fresh guest → host vsock port of this container's VM. */
  listenVsock(): Promise<VsockListener>;
  /** The bundle's config.json as the guest must see it on this VM's network (see specForVmNetwork). */
  guestSpec(raw: Uint8Array): Uint8Array;
  /** True while this container is its pod's only member: its release powers the VM off. */
  endsPod(): boolean;
  /**
   * The container is gone: drop its rootfs references. The last member's release only starts
   * powering the VM off, so containerd's Delete does not wait for it; PodManager.shutdown() does.
   */
  release(): Promise<void>;
}

export interface PrepareRequest {
  readonly id: string;
  readonly namespace: string;
  readonly spec: OciSpec;
  readonly mounts: readonly Mount[];
  readonly log: Logger;
}

/** Placement of containers onto VMs: one VM per pod, one per standalone container. */
export interface PodManager {
  prepare(req: PrepareRequest): Promise<ContainerSandbox>;
  /** Called when a VM died underneath its containers (crash, OOM-kill of QEMU, SIGKILL). */
  onVmExit(handler: (podId: string, members: readonly string[]) => void): void;
  /** Out-of-memory kills the guest reports for a container (from its Events stream). */
  onOom(handler: (containerId: string) => void): void;
  /** Powers every VM off. */
  shutdown(): Promise<void>;
  readonly podCount: number;
}

/**
 * A spec whose network namespace entry has no path (`ctr run`) asks for a namespace of its own,
 * which beetroot made on the host and spliced onto the VM's NIC (managed mode): inside the VM the
 * container's network is the VM's. The entry gets that host namespace's path, which the guest
 * reads exactly like CRI's pod namespace — "the container uses the VM's network"
 * (guest/vminitd/task/spec.ts); left without a path, crun would give the container a new, empty
 * namespace with only loopback. Anything else is forwarded byte for byte.
 */
export function specForVmNetwork(raw: Uint8Array, network: VmNetwork | undefined): Uint8Array {
  if (network?.mode !== "managed") return raw;
  const text = Buffer.from(raw).toString("utf8");
  const spec = parseLossless(text, "config.json");
  const linux = spec instanceof JsonObject ? spec.get("linux") : undefined;
  const namespaces = linux instanceof JsonObject ? linux.get("namespaces") : undefined;
  if (!Array.isArray(namespaces)) return raw;
  let changed = false;
  for (const ns of namespaces) {
    if (!(ns instanceof JsonObject) || ns.get("type") !== "network") continue;
    const path = ns.get("path");
    if (path !== undefined && path !== "") continue;
    ns.set("path", network.netns);
    changed = true;
  }
  return changed ? Buffer.from(serializeLossless(spec)) : raw;
}

/** Guest → host vsock ports for stdio start here; below are the fixed service ports. */
const FIRST_STDIO_PORT = 20_000;

class Pod {
  readonly members = new Set<string>();
  private nextPort = FIRST_STDIO_PORT;
  stopping: Promise<void> | undefined;

  constructor(
    readonly id: string,
    readonly vm: Vm,
    /** Serials br-0 … br-(n-1) went to the disks the VM booted with. */
    private nextSerial: number,
  ) {}

  allocateSerial(): string {
    return `br-${this.nextSerial++}`;
  }

  private nextVolume = 0;
  /** Names in the VM's volume share (internal/volumes VOLUME_NAME_RE). */
  allocateVolume(): string {
    return `v${this.nextVolume++}`;
  }

  port(): number {
    return this.nextPort++;
  }
}

export interface PodManagerOptions {
  /** containerd's address (`-address`): part of every VM id. */
  readonly containerdAddress: string;
  readonly vmm: Vmm;
  readonly storage: MountTranslator;
  readonly log: Logger;
  readonly stopGraceSeconds?: number;
  /** The size of VMs nothing else sizes, read at each boot (the config file may change). */
  readonly vmDefaults?: () => VmDefaults;
}

export class VmPodManager implements PodManager {
  private readonly pods = new Map<string, Pod>();
  private readonly pending = new Map<string, Promise<Pod>>();
  /** Pods powering off after their last member left: shutdown() waits for them. */
  private readonly endings = new Set<Promise<void>>();
  private vmExitHandler: (podId: string, members: readonly string[]) => void = () => {};
  private oomHandler: (containerId: string) => void = () => {};

  constructor(private readonly opts: PodManagerOptions) {}

  get podCount(): number {
    return this.pods.size;
  }

  onVmExit(handler: (podId: string, members: readonly string[]) => void): void {
    this.vmExitHandler = handler;
  }

  onOom(handler: (containerId: string) => void): void {
    this.oomHandler = handler;
  }

  async prepare(req: PrepareRequest): Promise<ContainerSandbox> {
    const role = podRoleOf(req.spec.annotations);
    // Before anything boots or joins: a missing bind source fails Create with nothing to undo.
    const volumes = containerVolumes(req.spec);
    const podId = role === "standalone" ? req.id : groupIdOf(req.spec.annotations, req.id);
    const existing = this.pods.get(podId) ?? (await this.pending.get(podId)?.catch(() => undefined));

    if (existing) {
      if (role !== "container") {
        throw alreadyExists(
          `a VM for pod ${podId} already runs in this shim; ${req.id} cannot create another`,
        );
      }
      return this.join(existing, req, volumes);
    }
    if (role === "container") {
      throw failedPrecondition(
        `container ${req.id} belongs to pod ${podId}, whose sandbox VM is not running in this shim`,
      );
    }
    // A pod sandbox's VM gets the share even without volumes of its own: its app containers
    // join later, and microvm cannot add the device then.
    return this.boot(podId, req, volumes, volumes.length > 0 || role === "sandbox");
  }

  private async translate(
    req: PrepareRequest,
    allocateSerial: () => string,
    cleanup: CleanupStack,
  ): Promise<TranslatedRootfs> {
    try {
      const rootfs = await this.opts.storage.translate({
        containerId: req.id,
        mounts: req.mounts,
        allocateSerial,
      });
      cleanup.push(`release rootfs of ${req.id}`, () => rootfs.release());
      return rootfs;
    } catch (err) {
      if (err instanceof UnsupportedMountError) throw invalidArgument(err.message);
      throw wrapError(err, `preparing rootfs of ${req.id}`);
    }
  }

  private async boot(
    podId: string,
    req: PrepareRequest,
    volumes: readonly Volume[],
    volumeShare: boolean,
  ): Promise<ContainerSandbox> {
    const cleanup = new CleanupStack();
    let serials = 0;
    const started = (async () => {
      const rootfs = await this.translate(req, () => `br-${serials++}`, cleanup);
      const size = vmSizeFor(req.spec, undefined, this.opts.vmDefaults?.());
      req.log.info("booting VM", {
        pod: podId,
        cpus: size.cpus,
        memory_mib: size.memoryMib,
        sized_by: size.source,
        disks: rootfs.disks.length,
      });
      let vm: Vm;
      try {
        vm = await this.opts.vmm.launch({
          id: podVmId(this.opts.containerdAddress, req.namespace, podId),
          cpus: size.cpus,
          memoryMib: size.memoryMib,
          disks: rootfs.disks.map((d): VmDisk => ({ path: d.path, serial: d.serial, readOnly: d.readOnly })),
          volumes: volumeShare,
          spec: req.spec,
          log: req.log.with({ pod: podId }),
        });
      } catch (err) {
        throw wrapError(err, `booting the VM for ${podId}`);
      }
      const pod = new Pod(podId, vm, serials);
      this.watchVm(pod);
      cleanup.push(`stop the VM of ${podId}`, () => vm.stop({ graceSeconds: 0 }));
      const shared = await shareVolumes(vm, volumes, () => pod.allocateVolume(), req.log);
      return { pod, rootfs, shared };
    })();
    const pendingPod = started.then((s) => s.pod);
    pendingPod.catch(() => {}); // the failure is reported to this caller below, not to joiners
    this.pending.set(podId, pendingPod);
    try {
      const { pod, rootfs, shared } = await started;
      this.pods.set(podId, pod);
      pod.members.add(req.id);
      cleanup.release();
      return this.sandboxFor(pod, req.id, rootfs, shared);
    } catch (err) {
      await cleanup.unwind(req.log);
      throw err;
    } finally {
      this.pending.delete(podId);
    }
  }

  private async join(pod: Pod, req: PrepareRequest, volumes: readonly Volume[]): Promise<ContainerSandbox> {
    if (pod.stopping) throw failedPrecondition(`pod ${pod.id} is shutting down`);
    const cleanup = new CleanupStack();
    const rootfs = await this.translate(req, () => pod.allocateSerial(), cleanup);
    const serials = rootfs.disks.map((d) => d.serial);
    if (rootfs.disks.length > 0) {
      const vm = pod.vm;
      if (!vm.attachDisks) {
        await cleanup.unwind(req.log);
        throw failedPrecondition(
          `container ${req.id} needs ${rootfs.disks.length} image disk(s) but the running VM of pod ${pod.id} cannot take disks after boot`,
        );
      }
      const started = performance.now();
      try {
        await vm.attachDisks(
          rootfs.disks.map((d): VmDisk => ({ path: d.path, serial: d.serial, readOnly: d.readOnly })),
        );
      } catch (err) {
        await cleanup.unwind(req.log);
        throw wrapError(err, `attaching disks for ${req.id}`);
      }
      req.log.info("disks attached to the running VM", {
        pod: pod.id,
        disks: serials.join(","),
        ms: Math.round(performance.now() - started),
      });
    }
    let shared: SharedVolumes;
    try {
      shared = await shareVolumes(pod.vm, volumes, () => pod.allocateVolume(), req.log);
    } catch (err) {
      if (serials.length > 0) await pod.vm.detachDisks?.(serials).catch(() => {});
      await cleanup.unwind(req.log);
      throw err;
    }
    pod.members.add(req.id);
    cleanup.release();
    return this.sandboxFor(pod, req.id, rootfs, shared, serials);
  }

  /** `attached`: disks given to the running VM for this container only, taken away on release. */
  private sandboxFor(
    pod: Pod,
    id: string,
    rootfs: TranslatedRootfs,
    volumes: SharedVolumes,
    attached: readonly string[] = [],
  ): ContainerSandbox {
    let released = false;
    return {
      podId: pod.id,
      guest: pod.vm.guest,
      rootfs: rootfs.mounts,
      vmPid: pod.vm.pid,
      listenVsock: () => pod.vm.listenVsock(pod.port()),
      guestSpec: (raw) => specWithVolumes(specForVmNetwork(raw, pod.vm.network), volumes),
      endsPod: () => !released && pod.members.size === 1 && pod.members.has(id),
      release: async () => {
        if (released) return;
        released = true;
        pod.members.delete(id);
        if (pod.members.size === 0) {
          this.track(this.stopPod(pod).then(() => this.releaseRootfs(rootfs, id)));
          return;
        }
        await volumes.release();
        if (attached.length > 0) {
          // The guest unmounted them when it deleted the container; a stopped VM released them itself.
          await pod.vm.detachDisks?.(attached).catch((err: unknown) =>
            this.opts.log.error("detaching disks failed (the VM's stop or `beetroot gc` releases them)", {
              pod: pod.id,
              disks: attached.join(","),
              error: errorMessage(err),
            }),
          );
        }
        await this.releaseRootfs(rootfs, id);
      },
    };
  }

  private async releaseRootfs(rootfs: TranslatedRootfs, id: string): Promise<void> {
    await rootfs
      .release()
      .catch((err: unknown) =>
        this.opts.log.error("releasing a rootfs failed", { id, error: errorMessage(err) }),
      );
  }

  private track(ending: Promise<void>): void {
    this.endings.add(ending);
    void ending.finally(() => this.endings.delete(ending));
  }

  /**
   * The guest's event stream carries OOM kills (exits are followed per process with Wait, which needs
   * no stream). A guest without the stream answers Unimplemented: then there are no OOM events.
   */
  private followGuestEvents(pod: Pod): void {
    void (async () => {
      try {
        for await (const ev of pod.vm.guest.task.events({})) {
          if (ev.event.case === "oom") this.oomHandler(ev.event.value.id);
        }
      } catch (err) {
        if (!pod.stopping)
          this.opts.log.debug("guest event stream ended", { pod: pod.id, error: errorMessage(err) });
      }
    })();
  }

  private watchVm(pod: Pod): void {
    this.followGuestEvents(pod);
    void pod.vm.exited.then(() => {
      if (this.pods.get(pod.id) !== pod) return;
      this.pods.delete(pod.id);
      if (pod.stopping) return;
      this.opts.log.error("VM exited unexpectedly", { pod: pod.id, vmm_pid: pod.vm.pid });
      this.vmExitHandler(pod.id, [...pod.members]);
    });
  }

  private stopPod(pod: Pod): Promise<void> {
    pod.stopping ??= (async () => {
      // With no container left there is nothing for a guest shutdown to stop (its rootfs is
      // read-only disks and tmpfs): killing the VMM saves the emulated power-off's CPU, which the
      // host otherwise spends beside containerd's cleanup of this run and the start of the next.
      // A shim told to go with containers running shuts them down.
      const graceSeconds = pod.members.size === 0 ? 0 : (this.opts.stopGraceSeconds ?? 5);
      this.opts.log.info("stopping VM", { pod: pod.id, grace_s: graceSeconds });
      try {
        await pod.vm.stop({ graceSeconds });
      } catch (err) {
        this.opts.log.error("stopping VM failed", { pod: pod.id, error: errorMessage(err) });
      }
      if (this.pods.get(pod.id) === pod) this.pods.delete(pod.id);
    })();
    return pod.stopping;
  }

  /**
   * Powers every VM off, including those still booting: they are stopped once their launch settles.
   * The shim exits right after, and exiting mid-launch or mid-teardown would leave the pod network
   * (CNI lease, namespace) for `beetroot gc`.
   */
  async shutdown(): Promise<void> {
    const booting = await Promise.all([...this.pending.values()].map((p) => p.catch(() => undefined)));
    const pods = new Set([...this.pods.values(), ...booting.filter((p): p is Pod => p !== undefined)]);
    await Promise.all([...pods].map((p) => this.stopPod(p)));
    await Promise.all([...this.endings]);
  }

  /** For tests and Connect: the pod a container runs in. */
  podOf(containerId: string): string {
    for (const pod of this.pods.values()) if (pod.members.has(containerId)) return pod.id;
    throw notFound(`container ${containerId} is in no pod of this shim`);
  }
}
