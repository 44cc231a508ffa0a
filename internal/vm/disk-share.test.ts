import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { setupMissing, skipReason } from "../../test/fixtures/skip.ts";
import { isMountPoint } from "../state/releasers.ts";
import {
  bindFileReadOnly,
  checkSharedName,
  checkSharedSource,
  DISK_SHARE_TAG,
  diskShareArgs,
  unbindFile,
} from "./disk-share.ts";
import { buildQemuArgs } from "./qemu-args.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "diskshare-"));
  dirs.push(d);
  return d;
}

const layout = {
  kernel: "/k/vmlinux",
  cmdline: "console=ttyS0",
  accel: "tcg" as const,
  cpus: 1,
  memoryMiB: 512,
  disks: [{ id: "root", path: "/k/root.erofs", readonly: true }],
  qmpSocket: "/run/vm/qmp.sock",
  consoleLog: "/run/vm/console.log",
  vhostUserSocket: "/run/vm/vhost-user.sock",
};

describe("disk share", () => {
  it("is a read-only virtio-9p (mmio) device with the tag the guest looks for, inode-remapped", () => {
    expect(diskShareArgs("/run/vm/a,b/disks")).toEqual([
      "-fsdev",
      "local,id=diskshare,path=/run/vm/a,,b/disks,security_model=none,readonly=on,multidevs=remap",
      "-device",
      `virtio-9p-device,fsdev=diskshare,mount_tag=${DISK_SHARE_TAG}`,
    ]);
    expect(DISK_SHARE_TAG).toBe("beetroot-disks");
    const args = buildQemuArgs({ ...layout, diskShare: "/run/vm/disks" });
    expect(args.join(" ")).toContain(diskShareArgs("/run/vm/disks").join(" "));
    expect(buildQemuArgs(layout)).not.toContain("-fsdev");
  });

  it("accepts serial-like names and regular files only", () => {
    expect(() => checkSharedName("br-12")).not.toThrow();
    for (const bad of ["", "../x", "a/b", "x".repeat(21), "br 1"])
      expect(() => checkSharedName(bad)).toThrow(/must match/);
    const d = tmp();
    writeFileSync(join(d, "img"), "x");
    expect(() => checkSharedSource(join(d, "img"))).not.toThrow();
    expect(() => checkSharedSource(d)).toThrow(`disk image ${d} cannot be shared: not a regular file`);
    expect(() => checkSharedSource(join(d, "gone"))).toThrow(/cannot be shared: ENOENT/);
  });

  const root = !skipReason(
    import.meta.url,
    setupMissing(
      process.getuid?.() === 0 ? undefined : "bind mounts need root; the test command runs as root",
    ),
  );
  it.skipIf(!root)("binds a file read-only across filesystems without copying, and unbinds it", async () => {
    const src = join(tmp(), "layer.erofs");
    writeFileSync(src, "image bytes");
    // /dev/shm is a tmpfs: another filesystem than the one tmpdir() is on, as /run is for the layers.
    const share = mkdtempSync("/dev/shm/diskshare-");
    dirs.push(share);
    const target = join(share, "br-1");
    await bindFileReadOnly(src, target);
    try {
      expect(isMountPoint(target)).toBe(true);
      expect(readFileSync(target, "utf8")).toBe("image bytes");
      expect(() => writeFileSync(target, "changed")).toThrow(/EROFS|read-only/);
      await expect(bindFileReadOnly(src, target)).rejects.toThrow(/EEXIST/);
    } finally {
      await unbindFile(target);
    }
    expect(isMountPoint(target)).toBe(false);
    expect(existsSync(target)).toBe(false);
    expect(readFileSync(src, "utf8")).toBe("image bytes");
    await unbindFile(target); // already gone: done
  });
});
