import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { hostTscKhz, type KernelArtifact, kernelArtifact } from "../internal/kernel/index.ts";
import { type Missing, setupMissing, skipReason } from "./fixtures/skip.ts";

/**
 * Boots the built guest kernel once under QEMU TCG (microvm, PVH vmlinux) with a busybox initramfs
 * that reports, from inside the guest, what beetroot relies on: binder + binderfs with the three
 * devices, /proc/config.gz, the cgroup v2 controllers, and the filesystems.
 */

function missingKernel(): Missing | undefined {
  try {
    kernelArtifact();
    loadHostDeps();
    return undefined;
  } catch (err) {
    return setupMissing((err as Error).message);
  }
}

const reason = skipReason(import.meta.url, missingKernel());

const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
echo "BEETROOT-UNAME $(uname -r)"
zcat /proc/config.gz | grep -E '^CONFIG_(ANDROID_BINDER_IPC|ANDROID_BINDERFS|ANDROID_BINDER_DEVICES|DMABUF_HEAPS_SYSTEM|PSI)=' | sed 's/^/BEETROOT-CONFIG /'
zcat /proc/config.gz | grep -q '^CONFIG_MODULES=y' && echo BEETROOT-CONFIG MODULES=y
mkdir -p /dev/binderfs
mount -t binder binder /dev/binderfs && echo "BEETROOT-BINDERFS $(ls /dev/binderfs | tr '\\n' ' ')"
mkdir -p /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup && echo "BEETROOT-CGROUP2 $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "BEETROOT-DMAHEAP $(ls /dev/dma_heap)"
echo "BEETROOT-PSI $(ls /proc/pressure | tr '\\n' ' ')"
echo "BEETROOT-FS $(grep -oE 'erofs|overlay|ext4|fuse$|tmpfs|binder' /proc/filesystems | tr '\\n' ' ')"
ls /dev/vport* /dev/vda 2>/dev/null
echo BEETROOT-DONE
poweroff -f
`;

async function buildInitramfs(busybox: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "beetroot-kernel-test-"));
  const root = join(dir, "root");
  mkdirSync(join(root, "bin"), { recursive: true });
  copyFileSync(busybox, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  writeFileSync(join(root, "init"), init);
  chmodSync(join(root, "init"), 0o755);
  const cpio = join(dir, "initramfs.cpio");
  await execa("bash", [
    "-c",
    'cd "$1" && find . -print0 | cpio --null -o -H newc --quiet > "$2"',
    "x",
    root,
    cpio,
  ]);
  return cpio;
}

async function boot(
  kernel: KernelArtifact,
  initrd: string,
  qemu: string,
): Promise<{ out: string; seconds: number }> {
  const tsc = await hostTscKhz();
  const started = Date.now();
  const r = await execa(
    qemu,
    [
      ...["-M", "microvm", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "256M"],
      ...["-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot"],
      ...["-kernel", kernel.vmlinux, "-initrd", initrd],
      ...["-append", `console=ttyS0 tsc_early_khz=${tsc.khz} panic=-1 reboot=t`],
    ],
    { reject: false, timeout: 120_000, all: true, stdin: "ignore" },
  );
  return { out: String(r.all), seconds: (Date.now() - started) / 1000 };
}

describe.skipIf(reason !== undefined)("guest kernel boots under QEMU TCG", () => {
  it("has binder, binderfs devices, cgroup v2 controllers and the filesystems", async () => {
    const kernel = kernelArtifact();
    const deps = loadHostDeps();
    const initrd = await buildInitramfs(deps.busyboxStatic);
    const { out, seconds } = await boot(kernel, initrd, deps.qemu);
    console.log(
      `booted ${kernel.version} to BEETROOT-DONE in ${seconds.toFixed(2)} s (TCG, incl. QEMU start and poweroff)`,
    );
    const lines = out.split(/\r?\n/);
    const tagged = (tag: string) =>
      lines.filter((l) => l.startsWith(`${tag} `)).map((l) => l.slice(tag.length + 1).trim());
    expect(out, out).toContain("BEETROOT-DONE");
    expect(tagged("BEETROOT-UNAME")).toEqual([kernel.version]);
    expect(tagged("BEETROOT-CONFIG").sort()).toEqual(
      [
        'CONFIG_ANDROID_BINDER_DEVICES="binder,hwbinder,vndbinder"',
        "CONFIG_ANDROID_BINDERFS=y",
        "CONFIG_ANDROID_BINDER_IPC=y",
        "CONFIG_DMABUF_HEAPS_SYSTEM=y",
        "CONFIG_PSI=y",
      ].sort(),
    );
    const binderfs = tagged("BEETROOT-BINDERFS")[0]?.split(" ") ?? [];
    for (const dev of ["binder", "hwbinder", "vndbinder", "binder-control"])
      expect(binderfs, out).toContain(dev);
    const controllers = tagged("BEETROOT-CGROUP2")[0]?.split(" ") ?? [];
    for (const c of ["cpuset", "cpu", "io", "memory", "pids"]) expect(controllers, out).toContain(c);
    expect(tagged("BEETROOT-DMAHEAP")).toEqual(["system"]);
    for (const p of ["cpu", "io", "memory"])
      expect(tagged("BEETROOT-PSI")[0]?.split(" ") ?? [], out).toContain(p);
    const fs = tagged("BEETROOT-FS")[0]?.split(" ") ?? [];
    for (const f of ["erofs", "overlay", "ext4", "tmpfs", "binder", "fuse"]) expect(fs, out).toContain(f);
  });
});
