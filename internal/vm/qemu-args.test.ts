import { describe, expect, it } from "vitest";
import { buildKernelCmdline, buildQemuArgs, type QemuLayout, tcgLapicTimerPeriod } from "./qemu-args.ts";

const layout: QemuLayout = {
  kernel: "/a/vmlinux",
  cmdline: "console=ttyS0",
  accel: "tcg",
  cpus: 1,
  memoryMiB: 512,
  disks: [{ id: "root", path: "/a/guest.erofs", readonly: true }],
  qmpSocket: "/r/qmp.sock",
  consoleLog: "/r/console,log",
  vhostUserSocket: "/r/vhost-user.sock",
};

function opt(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

describe("QEMU arguments", () => {
  it("builds a TCG microvm with shared memfd RAM, vsock, QMP, console and the root disk", () => {
    const args = buildQemuArgs(layout);
    expect(opt(args, "-M")[0]).toMatch(/^microvm,.*memory-backend=mem/);
    expect(opt(args, "-accel")).toEqual(["tcg,thread=multi"]);
    expect(opt(args, "-cpu")).toEqual(["max"]);
    expect(opt(args, "-object")).toEqual(["memory-backend-memfd,id=mem,size=512M,share=on"]);
    expect(opt(args, "-qmp")).toEqual(["unix:/r/qmp.sock,server=on,wait=off"]);
    // A comma inside a path is doubled, as QEMU's option syntax wants.
    expect(opt(args, "-chardev")).toContain("file,id=console,path=/r/console,,log");
    expect(opt(args, "-device")).toEqual([
      "vhost-user-vsock-device,chardev=vsock",
      "virtio-blk-device,drive=root,serial=root",
    ]);
    expect(opt(args, "-drive")).toEqual(["file=/a/guest.erofs,if=none,id=root,format=raw,readonly=on"]);
    expect(args).toContain("-nodefaults");
    expect(args).toContain("-no-reboot");
  });

  it("uses the host CPU under KVM", () => {
    const args = buildQemuArgs({ ...layout, accel: "kvm" });
    expect(opt(args, "-accel")).toEqual(["kvm"]);
    expect(opt(args, "-cpu")).toEqual(["host"]);
  });

  it("rejects disks it cannot name", () => {
    expect(() => buildQemuArgs({ ...layout, disks: [] })).toThrow(/root disk/);
    expect(() => buildQemuArgs({ ...layout, disks: [{ id: "a,b", path: "/x", readonly: true }] })).toThrow(
      /disk id/,
    );
    const d = { id: "d", path: "/x", readonly: false };
    expect(() => buildQemuArgs({ ...layout, disks: [d, d] })).toThrow(/unique/);
  });

  it("puts each pod NIC on its TAP descriptor as a virtio-net-device with the pod MAC and MTU", () => {
    const nic = (i: number) => ({
      id: `net${i}`,
      tap: `beetap${i}`,
      fd: 40 + i,
      vnetHdr: true,
      mac: `02:42:0a:7b:00:0${i}`,
      mtu: 1450,
      podInterface: `eth${i}`,
    });
    const args = buildQemuArgs({
      ...layout,
      nics: [
        { nic: nic(0), fdInChild: 3 },
        { nic: nic(1), fdInChild: 4 },
      ],
    });
    expect(opt(args, "-netdev")).toEqual(["tap,id=net0,fd=3,vhost=off", "tap,id=net1,fd=4,vhost=off"]);
    expect(opt(args, "-device").slice(-2)).toEqual([
      "virtio-net-device,netdev=net0,mac=02:42:0a:7b:00:00,host_mtu=1450",
      "virtio-net-device,netdev=net1,mac=02:42:0a:7b:00:01,host_mtu=1450",
    ]);
    expect(() =>
      buildQemuArgs({ ...layout, nics: [{ nic: { ...nic(0), id: "root" }, fdInChild: 3 }] }),
    ).toThrow(/already used/);
    expect(() =>
      buildQemuArgs({
        ...layout,
        nics: [
          { nic: nic(0), fdInChild: 3 },
          { nic: nic(1), fdInChild: 3 },
        ],
      }),
    ).toThrow(/descriptors must differ/);
    expect(() => buildQemuArgs({ ...layout, nics: [{ nic: nic(0), fdInChild: 2 }] })).toThrow(/≥ 3/);
  });
});

describe("kernel command line", () => {
  const base = {
    hostname: "vm1",
    port: 1024,
    hostTimeMs: 1700000000000,
    dialTimeoutMs: 30000,
    tscKhz: 2596000,
    init: "/sbin/init",
    verbose: false,
    extra: [],
  };
  it("carries vminitd's beetroot.* contract and the TSC hint", () => {
    const words = buildKernelCmdline(base).split(" ");
    expect(words).toEqual(
      expect.arrayContaining([
        "console=ttyS0",
        "root=/dev/vda",
        "rootfstype=erofs",
        "ro",
        "init=/sbin/init",
        "tsc_early_khz=2596000",
        "beetroot.port=1024",
        "beetroot.hostname=vm1",
        "beetroot.time=1700000000000",
        "beetroot.dial_timeout_ms=30000",
        "quiet",
      ]),
    );
    expect(buildKernelCmdline({ ...base, tscKhz: undefined })).not.toMatch(/tsc_early_khz/);
    expect(buildKernelCmdline({ ...base, verbose: true })).not.toMatch(/quiet/);
  });
  it("presets the APIC timer period from the kernel's HZ under TCG", () => {
    expect(tcgLapicTimerPeriod(250)).toBe(4_000_000);
    expect(tcgLapicTimerPeriod(undefined)).toBeUndefined();
    expect(buildKernelCmdline({ ...base, lapicTimerPeriod: 4_000_000 })).toMatch(
      / lapic_timer_period=4000000 /,
    );
    expect(buildKernelCmdline(base)).not.toMatch(/lapic_timer_period/);
  });
  it("refuses extra words that would split", () => {
    expect(() => buildKernelCmdline({ ...base, extra: ["a b"] })).toThrow(/spaces or quotes/);
  });
});
