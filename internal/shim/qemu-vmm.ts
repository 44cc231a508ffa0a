import { System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Task as GuestTask } from "../../api/gen/beetroot/guest/v1/task_pb.ts";
import { guestImageArtifact } from "../../guest/build/artifact.ts";
import { type BeetrootConfig, loadConfig } from "../config/config.ts";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";
import { loadHostDeps } from "../hostdeps/index.ts";
import { hostTscKhz, kernelArtifact } from "../kernel/index.ts";
import type { Logger } from "../log/logger.ts";
import { decideAccel } from "../vm/accel.ts";
import { QemuVmm } from "../vm/launcher.ts";
import type { Vm as QemuVm } from "../vm/vm.ts";
import { failedPrecondition } from "./errors.ts";
import type { GuestClient } from "./guest-client.ts";
import type { Vm, Vmm, VmRequest, VsockListener } from "./vmm.ts";

/** How long the guest gets to dial a stdio port back after the host started listening. */
const STDIO_ACCEPT_TIMEOUT_MS = 120_000;

/** The guest root image `beetroot build guest` made; BEETROOT_GUEST_IMAGE overrides it for development. */
export function guestImagePath(paths: BeetrootPaths, env: NodeJS.ProcessEnv = process.env): string {
  return env.BEETROOT_GUEST_IMAGE || guestImageArtifact(paths).image;
}

interface Resolved {
  readonly vmm: QemuVmm;
  readonly kernel: string;
  readonly rootImage: string;
  readonly accel: "kvm" | "tcg";
  readonly tscKhz: number | undefined;
  readonly config: BeetrootConfig;
}

class QemuVmAdapter implements Vm {
  readonly guest: GuestClient;
  readonly exited: Promise<void>;

  constructor(private readonly vm: QemuVm) {
    this.guest = { task: vm.guest.service(GuestTask), system: vm.guest.service(System) };
    this.exited = vm.exited.then(() => undefined);
  }

  get pid(): number {
    return 0;
  }

  async listenVsock(port: number): Promise<VsockListener> {
    const l = await this.vm.listen(port);
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

  async stop(opts: { graceSeconds?: number } = {}): Promise<void> {
    await this.vm.stop({ timeoutMs: (opts.graceSeconds ?? 5) * 1000 });
  }
}

/**
 * The production Vmm: QEMU + vhost-device-vsock through internal/vm, with the guest kernel and image
 * beetroot built, KVM when a probe proved it works here and TCG otherwise (announced in the log).
 * Everything is resolved on the first launch, so a shim without assets still starts and answers,
 * and the first Create gets a precise FailedPrecondition naming what to build.
 */
export class QemuVmmAdapter implements Vmm {
  private resolved: Promise<Resolved> | undefined;

  constructor(
    private readonly log: Logger,
    private readonly paths: BeetrootPaths = beetrootPaths(),
  ) {}

  private resolve(): Promise<Resolved> {
    this.resolved ??= (async () => {
      const config = loadConfig(this.paths);
      const deps = loadHostDeps(this.paths);
      const kernel = kernelArtifact(this.paths);
      const rootImage = guestImagePath(this.paths);
      const decision = await decideAccel({
        configured: config.vm.accel,
        cacheDir: this.paths.cacheDir,
        guestKernelId: kernel.fingerprint,
        probeInputs: {
          qemu: deps.qemu,
          kernel: kernel.vmlinux,
          busybox: deps.busyboxStatic,
          timeoutMs: config.vm.kvmProbeTimeoutMs,
        },
      });
      if (decision.announcement) this.log.warn(decision.announcement);
      const tsc = await hostTscKhz().catch(() => undefined);
      return {
        vmm: new QemuVmm({
          qemu: deps.qemu,
          vhostDeviceVsock: deps.vhostDeviceVsock,
          paths: this.paths,
          log: this.log,
        }),
        kernel: kernel.vmlinux,
        rootImage,
        accel: decision.accel,
        tscKhz: tsc?.khz,
        config,
      };
    })();
    this.resolved.catch(() => {
      this.resolved = undefined; // fix the host and retry without restarting the shim
    });
    return this.resolved;
  }

  async launch(req: VmRequest): Promise<Vm> {
    let r: Resolved;
    try {
      r = await this.resolve();
    } catch (err) {
      throw failedPrecondition(`cannot boot a VM: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (req.netnsPath) {
      req.log.warn("pod network namespace given; VM networking is attached by internal/network", {
        netns: req.netnsPath,
      });
    }
    const vm = await r.vmm.launch({
      id: req.id,
      kernel: r.kernel,
      rootImage: r.rootImage,
      disks: req.disks.map((d) => ({ id: d.serial, path: d.path, readonly: d.readOnly })),
      cpus: req.cpus,
      memoryMiB: req.memoryMib,
      accel: r.accel,
      tscKhz: r.tscKhz,
      bootTimeoutMs: r.config.vm.bootTimeoutMs,
    });
    return new QemuVmAdapter(vm);
  }
}
