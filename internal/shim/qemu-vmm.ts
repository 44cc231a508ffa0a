import { System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Task as GuestTask } from "../../api/gen/beetroot/guest/v1/task_pb.ts";
import { guestImageArtifact } from "../../guest/build/artifact.ts";
import { type BeetrootConfig, loadConfig } from "../config/config.ts";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";
import { loadHostDeps } from "../hostdeps/index.ts";
import { hostTscKhz, kernelArtifact } from "../kernel/index.ts";
import type { Logger } from "../log/logger.ts";
import { NetworkError } from "../rtnetlink/errors.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";
import { decideAccel } from "../vm/accel.ts";
import { QemuVmm } from "../vm/launcher.ts";
import { launchPodVm, type PodVm, type PodVmOptions } from "../vm/pod-network.ts";
import type { Vmm as VmLauncher } from "../vm/vm.ts";
import type { Volume } from "../volumes/plan.ts";
import { errorMessage, failedPrecondition } from "./errors.ts";
import type { GuestClient } from "./guest-client.ts";
import type { Vm, VmDisk, Vmm, VmNetwork, VmRequest, VsockListener } from "./vmm.ts";

/** How long the guest gets to dial a stdio port back after the host started listening. */
const STDIO_ACCEPT_TIMEOUT_MS = 120_000;

/** The guest root image `beetroot build guest` made; BEETROOT_GUEST_IMAGE overrides it for development. */
export function guestImagePath(paths: BeetrootPaths, env: NodeJS.ProcessEnv = process.env): string {
  return env.BEETROOT_GUEST_IMAGE || guestImageArtifact(paths).image;
}

/** What the host offers for booting VMs, resolved on the first launch. */
export interface ResolvedHost {
  readonly vmm: VmLauncher;
  readonly kernel: string;
  readonly rootImage: string;
  readonly accel: "kvm" | "tcg";
  readonly tscKhz: number | undefined;
  readonly config: BeetrootConfig;
}

/**
 * A NetworkError carries the gRPC code name containerd should see (a refused host network is
 * InvalidArgument, an exhausted IP range ResourceExhausted, a missing CNI plugin NotFound, …);
 * anything else keeps its TTRPC code or becomes Internal.
 */
export function launchError(err: unknown): TtrpcError {
  if (err instanceof NetworkError) return new TtrpcError(Code[err.code], err.message);
  return TtrpcError.from(err);
}

class QemuVmAdapter implements Vm {
  readonly guest: GuestClient;
  readonly exited: Promise<void>;
  readonly network: VmNetwork;
  private released: Promise<void> | undefined;

  constructor(
    private readonly pod: PodVm,
    private readonly log: Logger,
  ) {
    const vm = pod.vm;
    this.guest = { task: vm.guest.service(GuestTask), system: vm.guest.service(System) };
    const attachment = pod.network.attachment;
    this.network = {
      mode: attachment.mode,
      netns: attachment.netns,
      addresses: attachment.guestConfig.interfaces.flatMap((i) => i.addresses),
    };
    // However QEMU went away (crash, OOM kill, a guest power-off), the pod network goes with it.
    this.exited = vm.exited.then(() => this.release());
  }

  get pid(): number {
    return this.pod.vm.pids.qemu;
  }

  async listenVsock(port: number): Promise<VsockListener> {
    const l = await this.pod.vm.listen(port);
    const abort = new AbortController();
    return {
      port,
      accept: () => l.accept(STDIO_ACCEPT_TIMEOUT_MS, abort.signal),
      close: () => {
        abort.abort(new Error(`vsock port ${port} closed`));
        void l.close();
      },
    };
  }

  /**
   * Disks for the running VM go on its virtio-9p disk share (microvm cannot hot-plug virtio-blk):
   * each image is bind-mounted read-only under its serial, recorded in the VM's ledger first.
   * The share is read-only, so a writable disk (an ext4 layer of containerd ≥ 2.2) cannot join.
   */
  async attachDisks(disks: readonly VmDisk[]): Promise<void> {
    const writable = disks.find((d) => !d.readOnly);
    if (writable) {
      throw failedPrecondition(
        `disk ${writable.serial} (${writable.path}) is writable: a running VM takes read-only disks only`,
      );
    }
    const done: string[] = [];
    try {
      for (const d of disks) {
        await this.pod.vm.shareFile(d.serial, d.path);
        done.push(d.serial);
      }
    } catch (err) {
      await this.detachDisks(done).catch((e: unknown) =>
        this.log.error("undoing a partial disk attach failed (the VM's stop releases the rest)", {
          error: errorMessage(e),
        }),
      );
      throw err;
    }
  }

  async detachDisks(serials: readonly string[]): Promise<void> {
    for (const s of serials) await this.pod.vm.unshareFile(s);
  }

  addVolume(name: string, volume: Volume): Promise<() => Promise<void>> {
    return this.pod.vm.addVolume(name, volume);
  }

  /** VM, then TAPs and tc, CNI DEL, namespace, ledger (PodVm.stop). Once; failures are logged for gc. */
  private release(timeoutMs?: number): Promise<void> {
    this.released ??= this.pod.stop(timeoutMs === undefined ? {} : { timeoutMs }).then(
      (exit) => {
        if (exit.error) this.log.warn("VM ended with an error", { error: exit.error.message });
      },
      (err: unknown) => {
        this.log.error("releasing the VM and its pod network failed (`beetroot gc` retries)", {
          error: errorMessage(err),
        });
      },
    );
    return this.released;
  }

  async stop(opts: { graceSeconds?: number } = {}): Promise<void> {
    await this.release((opts.graceSeconds ?? 5) * 1000);
  }
}

export interface QemuVmmAdapterHooks {
  /** Host resolution (assets, accelerator); tests pass their own. */
  readonly resolveHost?: (paths: BeetrootPaths, log: Logger) => Promise<ResolvedHost>;
  /** The pod VM sequence (network → VM → guest network); tests pass a fake. */
  readonly launchPodVm?: (opts: PodVmOptions) => Promise<PodVm>;
}

/** The production host: beetroot's kernel and guest image, KVM when a probe proved it works here, else TCG. */
export async function resolveQemuHost(paths: BeetrootPaths, log: Logger): Promise<ResolvedHost> {
  const config = loadConfig(paths);
  const deps = loadHostDeps(paths);
  const kernel = kernelArtifact(paths);
  const rootImage = guestImagePath(paths);
  const decision = await decideAccel({
    configured: config.vm.accel,
    cacheDir: paths.cacheDir,
    guestKernelId: kernel.fingerprint,
    probeInputs: {
      qemu: deps.qemu,
      kernel: kernel.vmlinux,
      busybox: deps.busyboxStatic,
      timeoutMs: config.vm.kvmProbeTimeoutMs,
    },
  });
  if (decision.announcement) log.warn(decision.announcement);
  const tsc = await hostTscKhz(process.env, paths.cacheDir).catch(() => undefined);
  return {
    vmm: new QemuVmm({
      qemu: deps.qemu,
      vhostDeviceVsock: deps.vhostDeviceVsock,
      virtiofsd: deps.virtiofsd,
      paths,
      log,
    }),
    kernel: kernel.vmlinux,
    rootImage,
    accel: decision.accel,
    tscKhz: tsc?.khz,
    config,
  };
}

/**
 * The production Vmm: each VM boots on its pod network (internal/vm/pod-network.ts: netns + CNI
 * or CRI's namespace, TAPs spliced onto the pod interfaces, QEMU + vhost-device-vsock, the guest's
 * NICs configured by vminitd), all recorded in the VM's ledger `vm-<id>` so `delete` and
 * `beetroot gc` can finish what a crash left. The host is resolved on the first launch, so a shim
 * without assets still starts and answers, and the first Create gets a precise FailedPrecondition
 * naming what to build.
 */
export class QemuVmmAdapter implements Vmm {
  private resolved: Promise<ResolvedHost> | undefined;

  constructor(
    private readonly log: Logger,
    private readonly paths: BeetrootPaths = beetrootPaths(),
    private readonly opts: QemuVmmAdapterHooks = {},
  ) {}

  private resolve(): Promise<ResolvedHost> {
    this.resolved ??= (this.opts.resolveHost ?? resolveQemuHost)(this.paths, this.log);
    this.resolved.catch(() => {
      this.resolved = undefined; // fix the host and retry without restarting the shim
    });
    return this.resolved;
  }

  async launch(req: VmRequest): Promise<Vm> {
    let r: ResolvedHost;
    try {
      r = await this.resolve();
    } catch (err) {
      throw failedPrecondition(`cannot boot a VM: ${errorMessage(err)}`);
    }
    let pod: PodVm;
    try {
      pod = await (this.opts.launchPodVm ?? launchPodVm)({
        vmm: r.vmm,
        spec: {
          id: req.id,
          kernel: r.kernel,
          rootImage: r.rootImage,
          disks: req.disks.map((d) => ({ id: d.serial, path: d.path, readonly: d.readOnly })),
          cpus: req.cpus,
          memoryMiB: req.memoryMib,
          ...(req.volumes ? { volumes: true } : {}),
          accel: r.accel,
          tscKhz: r.tscKhz,
          bootTimeoutMs: r.config.vm.bootTimeoutMs,
        },
        ociSpec: req.spec,
        containerId: req.id,
        paths: this.paths,
        log: req.log,
      });
    } catch (err) {
      throw launchError(err);
    }
    const vm = new QemuVmAdapter(pod, req.log);
    req.log.info("VM on its pod network", {
      vmm_pid: vm.pid,
      network: vm.network.mode,
      netns: vm.network.netns,
      addresses: vm.network.addresses.join(","),
    });
    return vm;
  }
}
