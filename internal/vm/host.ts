import { guestImageArtifact } from "../../guest/build/artifact.ts";
import { type BeetrootConfig, loadConfig } from "../config/config.ts";
import type { BeetrootPaths } from "../config/paths.ts";
import { type HostDeps, loadHostDeps } from "../hostdeps/index.ts";
import { hostTscKhz, type KernelArtifact, kernelArtifact, type TscRate } from "../kernel/index.ts";
import type { Logger } from "../log/logger.ts";
import { type AccelDecision, decideAccel } from "./accel.ts";
import { QemuVmm } from "./launcher.ts";
import type { VmSpec } from "./vm.ts";

/**
 * Everything this host offers for booting beetroot VMs, resolved once: host programs, the built
 * kernel and guest image, the TSC rate, the configuration and the accelerator decision. Every
 * missing piece is an error naming the command that provides it (setup / build kernel / build guest).
 */
export interface VmHost {
  readonly deps: HostDeps;
  readonly kernel: KernelArtifact;
  readonly rootImage: string;
  readonly tsc: TscRate;
  readonly config: BeetrootConfig;
  readonly accel: AccelDecision;
  readonly vmm: QemuVmm;
  /** A spec with this host's kernel, image, accelerator and the configured shape. */
  spec(id: string, overrides?: Partial<VmSpec>): VmSpec;
}

export async function resolveVmHost(
  paths: BeetrootPaths,
  log: Logger,
  opts: { reprobe?: boolean } = {},
): Promise<VmHost> {
  const config = loadConfig(paths);
  const deps = loadHostDeps(paths);
  const kernel = kernelArtifact(paths);
  const rootImage = guestImageArtifact(paths).image;
  const tsc = await hostTscKhz(process.env, paths.cacheDir);
  const accel = await decideAccel({
    configured: config.vm.accel,
    cacheDir: paths.cacheDir,
    guestKernelId: kernel.fingerprint,
    probeInputs: {
      qemu: deps.qemu,
      kernel: kernel.vmlinux,
      busybox: deps.busyboxStatic,
      timeoutMs: config.vm.kvmProbeTimeoutMs,
      tscKhz: tsc.khz,
    },
    ...(opts.reprobe !== undefined && { reprobe: opts.reprobe }),
  });
  const vmm = new QemuVmm({ qemu: deps.qemu, vhostDeviceVsock: deps.vhostDeviceVsock, paths, log });
  return {
    deps,
    kernel,
    rootImage,
    tsc,
    config,
    accel,
    vmm,
    spec: (id, overrides = {}) => ({
      id,
      kernel: kernel.vmlinux,
      rootImage,
      cpus: config.vm.cpus,
      memoryMiB: config.vm.memoryMiB,
      accel: accel.accel,
      accelReason: accel.reason,
      tscKhz: tsc.khz,
      bootTimeoutMs: config.vm.bootTimeoutMs,
      ...overrides,
    }),
  };
}
