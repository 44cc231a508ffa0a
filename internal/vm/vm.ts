import type { Socket } from "node:net";
import type { InfoResponse } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import type { VmNic } from "../network/network.ts";
import type { Ledger } from "../state/ledger.ts";
import type { Client } from "../ttrpc/index.ts";
import type { Volume } from "../volumes/plan.ts";
import type { Accelerator, DiskSpec } from "./qemu-args.ts";
import type { VmState } from "./state-machine.ts";
import type { VsockListener } from "./vsock.ts";

/**
 * The seam between "a VM" and how it is made. The shim, the bench and the tests talk to `Vmm`
 * and `Vm`; only launcher.ts knows about QEMU, vhost-device-vsock and their sockets.
 */

export interface VmSpec {
  /** Unique among live VMs; becomes the guest's hostname and names the run dir and ledger owner. */
  readonly id: string;
  /** PVH vmlinux. */
  readonly kernel: string;
  /** The guest image (EROFS), mounted by the guest as its root from /dev/vda. */
  readonly rootImage: string;
  /** More disks after the root (container layers, scratch). */
  readonly disks?: readonly DiskSpec[];
  /**
   * Pod NICs (internal/network `setup()`): each TAP descriptor is handed to QEMU as a virtio-net
   * device with the pod interface's MAC and MTU. The descriptors stay the caller's: it closes its
   * copies once launch() settled (`Network.closeTapFds()`), and the TAPs live as long as QEMU does.
   */
  readonly nics?: readonly VmNic[];
  readonly cpus: number;
  readonly memoryMiB: number;
  /** Boot with a volume share (virtiofsd + vhost-user-fs), empty until addVolume binds into it. */
  readonly volumes?: boolean;
  readonly accel: Accelerator;
  /**
   * Why this accelerator (AccelDecision.reason). Under TCG the launcher logs it once per VM with
   * the expected slowdown: the expensive path is never silent.
   */
  readonly accelReason?: string;
  /** Host TSC rate for `tsc_early_khz` (see internal/kernel/tsc.ts). */
  readonly tscKhz: number | undefined;
  /** From QEMU spawn until vminitd answers its first call. */
  readonly bootTimeoutMs: number;
  /** Guest init program (vminitd). */
  readonly init?: string;
  /** Kernel log on the console (slower under TCG). */
  readonly verboseConsole?: boolean;
  readonly kernelArgs?: readonly string[];
  /** vsock port vminitd dials on the host. */
  readonly guestPort?: number;
  /**
   * Record resources in this ledger instead of opening one for the VM (`vm-<id>`); the caller
   * keeps ownership of it (the shim records its network resources in the same one).
   */
  readonly ledger?: Ledger;
}

/** Milliseconds from the QEMU spawn, as measured on the host, plus what the guest reports. */
export interface BootTimings {
  /**
   * launch() → QEMU spawn: checks, ledger records (fsync'd), run dir, listener, vhost-device-vsock.
   * Not part of `totalMs`.
   */
  readonly launcherMs: number;
  /** vhost-device-vsock spawned and listening: before QEMU, not part of `totalMs`. */
  readonly vsockDaemonMs: number;
  /** QEMU's QMP socket answered. */
  readonly qmpReadyMs: number;
  /** vminitd's dial-back accepted. */
  readonly guestConnectedMs: number;
  /** First TTRPC call (System.Info) answered: the VM is usable. */
  readonly totalMs: number;
  /**
   * From the guest, CLOCK_BOOTTIME in seconds: when /sbin/init exec'd Bun, when vminitd's code
   * started, when it began dialling. The guest clock's zero is not QEMU's spawn nor exactly the
   * kernel's entry (the early kernel runs before it; under TCG the offset is ~0.2 s).
   */
  readonly guestInitExecS: number;
  readonly guestVminitdStartS: number;
  readonly guestReadyS: number;
  /** Guest uptime at the Info answer: totalMs − this = QEMU start + the kernel before its clock ran. */
  readonly guestUptimeAtInfoS: number;
}

export interface VmExit {
  readonly state: "stopped" | "failed";
  /** Why it failed (with the console tail), or undefined for a requested stop. */
  readonly error?: Error;
}

export interface Vm {
  readonly id: string;
  readonly state: VmState;
  readonly accel: Accelerator;
  /** TTRPC client on vminitd's dial-back connection (services from api/gen/beetroot/guest/v1). */
  readonly guest: Client;
  /** What vminitd answered to the first Info call. */
  readonly info: InfoResponse;
  readonly timings: BootTimings;
  readonly consoleLog: string;
  /** Host pids of the VM's processes (for RSS measurements and diagnostics). */
  readonly pids: { readonly qemu: number; readonly vhostDeviceVsock: number };
  /** Resolves once the VM is stopped or failed; never rejects. */
  readonly exited: Promise<VmExit>;
  onStateChange(listener: (to: VmState, from: VmState) => void): void;
  /** Host → guest stream to a port vminitd listens on. */
  connect(port: number, timeoutMs?: number): Promise<Socket>;
  /** Listens for guest → host connections on `port` (e.g. stdio dial-back); closed with the VM. */
  listen(port: number): Promise<VsockListener>;
  /**
   * Makes a host disk image (a regular file) readable by the guest as `<share>/<name>` on the
   * virtio-9p share every VM boots with (disk-share.ts): disks for a running VM, which microvm
   * cannot hot-plug. Read-only; released by unshareFile() or with the VM.
   */
  shareFile(name: string, hostPath: string): Promise<void>;
  /** Takes a shared disk away again (the guest must have unmounted it); unknown names are done. */
  unshareFile(name: string): Promise<void>;
  /**
   * Binds a host path into the VM's volume share as `name` (VmSpec.volumes); the guest finds it at
   * /run/beetroot/volumes/<name>. Returns its release (also run when the VM goes).
   */
  addVolume(name: string, volume: Volume): Promise<() => Promise<void>>;
  /**
   * Graceful: asks vminitd to power off, then QEMU to quit, then kills. Releases everything.
   * `timeoutMs: 0` skips the guest and kills QEMU at once: for a VM with nothing left to stop in it.
   */
  stop(opts?: { timeoutMs?: number }): Promise<VmExit>;
  /** Kills QEMU at once and releases everything. */
  kill(): Promise<VmExit>;
}

export interface Vmm {
  /** Boots a VM and resolves when vminitd answered; on failure everything is released first. */
  launch(spec: VmSpec, opts?: { signal?: AbortSignal }): Promise<Vm>;
}
