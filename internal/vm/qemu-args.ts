import type { VmNic } from "../network/network.ts";
import { qemuNicArgs } from "../network/qemu.ts";
import { VOLUME_SHARE_TAG } from "../volumes/virtiofsd.ts";
import { diskShareArgs } from "./disk-share.ts";

/**
 * QEMU's command line for a beetroot micro-VM, as a pure function of the VM's shape, so the flags
 * can be read, tested and measured in one place. See docs/vm.md for why each flag is there.
 */

export type Accelerator = "kvm" | "tcg";

export interface DiskSpec {
  /** QEMU drive id and virtio-blk serial (the guest finds disks by /sys/block/vdX/serial). */
  readonly id: string;
  readonly path: string;
  readonly readonly: boolean;
}

export interface QemuLayout {
  readonly kernel: string;
  readonly cmdline: string;
  readonly accel: Accelerator;
  readonly cpus: number;
  readonly memoryMiB: number;
  /** First disk is the guest's root (/dev/vda). */
  readonly disks: readonly DiskSpec[];
  readonly qmpSocket: string;
  readonly consoleLog: string;
  /** The vhost-user socket vhost-device-vsock listens on. */
  readonly vhostUserSocket: string;
  /** Pod NICs: each TAP descriptor as QEMU will find it (its spawn stdio slot, ≥ 3). */
  readonly nics?: readonly QemuNic[];
  /** Host directory exported read-only over virtio-9p: disks added after boot (disk-share.ts). */
  readonly diskShare?: string;
  /** virtiofsd's vhost-user socket: the volume share (internal/volumes). */
  readonly volumeSocket?: string;
}

export interface QemuNic {
  readonly nic: VmNic;
  readonly fdInChild: number;
}

/**
 * microvm options shared by every boot (the KVM probe too). The RTC stays on: with `rtc=off` the
 * kernel's CMOS clock reads spin on a floating bus for seconds (measured: +3.4 s at time init and
 * +2.9 s in rtc_cmos probing under TCG).
 */
export const MICROVM_OPTIONS: readonly string[] = [
  "microvm",
  // No firmware option ROMs to load or run: the kernel is entered directly through PVH.
  "x-option-roms=off",
  // Legacy interrupt/timer chips the guest does not need (it uses the IOAPIC and LAPIC timer).
  "pic=off",
  "pit=off",
  // ttyS0: the console.
  "isa-serial=on",
];

/** CPU model per accelerator: everything TCG can emulate; the host's own CPU under KVM. */
export const CPU_MODEL: Readonly<Record<Accelerator, string>> = { tcg: "max", kvm: "host" };

const ID_RE = /^[A-Za-z0-9_-]{1,20}$/;

/** QEMU option values use ',' as separator ("," must be doubled inside a value). */
function optValue(v: string): string {
  return v.replaceAll(",", ",,");
}

export function buildQemuArgs(l: QemuLayout): string[] {
  if (l.disks.length === 0) throw new Error("a VM needs at least its root disk");
  for (const d of l.disks) {
    if (!ID_RE.test(d.id))
      throw new Error(
        `disk id ${JSON.stringify(d.id)} must match ${ID_RE} (virtio-blk serials hold 20 bytes)`,
      );
  }
  if (new Set(l.disks.map((d) => d.id)).size !== l.disks.length) throw new Error("disk ids must be unique");
  const machine = [...MICROVM_OPTIONS, "memory-backend=mem"].join(",");
  const args = [
    "-M",
    machine,
    "-accel",
    l.accel === "tcg" ? "tcg,thread=multi" : "kvm",
    "-cpu",
    CPU_MODEL[l.accel],
    "-smp",
    String(l.cpus),
    "-m",
    `${l.memoryMiB}M`,
    // Guest RAM in a shared memfd: vhost-device-vsock maps it to reach the virtqueues.
    "-object",
    `memory-backend-memfd,id=mem,size=${l.memoryMiB}M,share=on`,
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    // A guest reboot or panic ends QEMU: the VM's life is one boot.
    "-no-reboot",
    "-kernel",
    optValue(l.kernel),
    "-append",
    l.cmdline,
    "-chardev",
    `file,id=console,path=${optValue(l.consoleLog)}`,
    "-serial",
    "chardev:console",
    "-qmp",
    `unix:${optValue(l.qmpSocket)},server=on,wait=off`,
    "-chardev",
    `socket,id=vsock,path=${optValue(l.vhostUserSocket)}`,
    "-device",
    // The CID is vhost-device-vsock's (--vm guest-cid=…); the vhost-user device has no such property.
    "vhost-user-vsock-device,chardev=vsock",
  ];
  const nics = l.nics ?? [];
  const ids = new Set<string>(["mem", "console", "vsock", ...l.disks.map((d) => d.id)]);
  for (const { nic } of nics) {
    if (!ID_RE.test(nic.id)) throw new Error(`NIC id ${JSON.stringify(nic.id)} must match ${ID_RE}`);
    if (ids.has(nic.id))
      throw new Error(`NIC id ${JSON.stringify(nic.id)} is already used by another QEMU object`);
    ids.add(nic.id);
  }
  if (new Set(nics.map((n) => n.fdInChild)).size !== nics.length)
    throw new Error("NIC descriptors must differ");
  for (const d of l.disks) {
    args.push(
      "-drive",
      `file=${optValue(d.path)},if=none,id=${d.id},format=raw,readonly=${d.readonly ? "on" : "off"}`,
      "-device",
      `virtio-blk-device,drive=${d.id},serial=${d.id}`,
    );
  }
  // virtio-net-device (virtio-mmio: microvm has no PCI) on the TAP the pod namespace holds.
  for (const n of nics) args.push(...qemuNicArgs(n.nic, n.fdInChild));
  if (l.diskShare !== undefined) args.push(...diskShareArgs(l.diskShare));
  if (l.volumeSocket !== undefined) {
    // vhost-user-fs on virtio-mmio; guest RAM is already the shared memfd virtiofsd must map.
    args.push(
      "-chardev",
      `socket,id=volumes,path=${optValue(l.volumeSocket)}`,
      "-device",
      `vhost-user-fs-device,chardev=volumes,tag=${VOLUME_SHARE_TAG}`,
    );
  }
  return args;
}

export interface GuestCmdline {
  readonly hostname: string;
  readonly port: number;
  readonly hostTimeMs: number;
  readonly dialTimeoutMs: number;
  /** Host TSC rate: under TCG the guest reads the host's TSC, and calibrating it hangs microvm boots. */
  readonly tscKhz: number | undefined;
  readonly init: string;
  /** Print the kernel log on the console (slower under TCG: every byte is an exit). */
  readonly verbose: boolean;
  /** Preset APIC timer period (bus clocks per jiffy); see tcgLapicTimerPeriod. */
  readonly lapicTimerPeriod?: number | undefined;
  readonly extra: readonly string[];
}

/** QEMU's emulated local APIC timer counts nanoseconds of virtual time: a 1 GHz bus clock. */
const QEMU_APIC_BUS_HZ = 1_000_000_000;

/**
 * The APIC timer period for a TCG guest with `kernelHz` ticks per second: what the kernel would
 * otherwise measure in a 100 ms calibration loop with its clock standing still (measured here:
 * "calibration result: 3999998" at HZ=250). beetroot's kernel takes it as `lapic_timer_period=`
 * (assets/kernel/patches); under KVM the TSC-deadline timer needs no calibration.
 */
export function tcgLapicTimerPeriod(kernelHz: number | undefined): number | undefined {
  return kernelHz ? Math.round(QEMU_APIC_BUS_HZ / kernelHz) : undefined;
}

/**
 * The kernel command line: the contract with vminitd (guest/vminitd/cmdline.ts reads the
 * `beetroot.*` keys) plus kernel options that shorten a micro-VM boot.
 */
export function buildKernelCmdline(c: GuestCmdline): string {
  for (const word of c.extra) {
    if (/\s|"/.test(word))
      throw new Error(`kernel command line word ${JSON.stringify(word)} contains spaces or quotes`);
  }
  const words = [
    "console=ttyS0",
    c.verbose ? "loglevel=7" : "quiet",
    "root=/dev/vda",
    "rootfstype=erofs",
    "ro",
    `init=${c.init}`,
    // Reboot at once on panic; with -no-reboot QEMU then exits and the host sees the failure.
    "panic=-1",
    // The host's clock is the reference; the watchdog only costs time here.
    "tsc=reliable",
    "no_timer_check",
    "cryptomgr.notests",
    "8250.nr_uarts=1",
    "random.trust_cpu=on",
    // On one vCPU the kernel would rewrite each of its ~8,000 LOCK prefixes to a NOP (SMP
    // alternatives → UP): self-modifying code TCG pays ~70 ms for, with the guest clock stopped.
    "noreplace-smp",
    // No loop devices made at boot (8 by default: 16 ms of initcall under TCG); loop-control and
    // opening /dev/loopN still create them on demand.
    "max_loop=0",
    ...(c.tscKhz ? [`tsc_early_khz=${c.tscKhz}`] : []),
    ...(c.lapicTimerPeriod ? [`lapic_timer_period=${c.lapicTimerPeriod}`] : []),
    `beetroot.port=${c.port}`,
    `beetroot.hostname=${c.hostname}`,
    `beetroot.time=${c.hostTimeMs}`,
    `beetroot.dial_timeout_ms=${c.dialTimeoutMs}`,
    ...c.extra,
  ];
  return words.join(" ");
}
