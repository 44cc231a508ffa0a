import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DISK_SHARE_TAG, DiskNotFoundError, DiskResolver, findDiskBySerial } from "./disks.ts";

describe("findDiskBySerial", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("maps a serial to its /dev node and names what it saw otherwise", () => {
    dir = mkdtempSync(join(tmpdir(), "sysblock-"));
    for (const [name, serial] of [
      ["vda", "root"],
      ["vdb", "br-0"],
      ["vdc", "br-1\n"],
    ] as const) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, "serial"), serial);
    }
    mkdirSync(join(dir, "loop0")); // no serial attribute
    expect(findDiskBySerial("br-1", dir)).toBe("/dev/vdc");
    expect(() => findDiskBySerial("br-9", dir)).toThrow(DiskNotFoundError);
    expect(() => findDiskBySerial("br-9", dir)).toThrow(
      'no virtio disk with serial "br-9" (disks: vda=root, vdb=br-0, vdc=br-1)',
    );
  });
});

describe("DiskResolver", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A /sys/block with vda=root, vdb=br-0, and a share dir whose "mount" is recorded. */
  function setup(shareMountError?: Error) {
    dir = mkdtempSync(join(tmpdir(), "disks-"));
    const sysBlock = join(dir, "sys");
    for (const [name, serial] of [
      ["vda", "root"],
      ["vdb", "br-0"],
    ] as const) {
      mkdirSync(join(sysBlock, name), { recursive: true });
      writeFileSync(join(sysBlock, name, "serial"), serial);
    }
    const shareDir = join(dir, "share");
    const mounts: string[] = [];
    let mounted = false;
    const resolver = new DiskResolver({
      sysBlock,
      devDir: "/dev",
      shareDir,
      share: {
        isMounted: (d) => mounted && d === shareDir,
        mountShare: (tag, d) => {
          mounts.push(`${tag} ${d}`);
          if (shareMountError) throw shareMountError;
          mkdirSync(d, { recursive: true });
          mounted = true;
        },
      },
    });
    return { resolver, shareDir, mounts };
  }

  it("prefers a virtio-blk disk and never touches the share for it", () => {
    const { resolver, mounts } = setup();
    expect(resolver.resolve("br-0", "erofs")).toBe("/dev/vdb");
    expect(mounts).toEqual([]);
  });

  it("falls back to the serial's file on the share, mounting the share once", () => {
    const { resolver, shareDir, mounts } = setup();
    resolver.resolve("br-0", "erofs");
    expect(() => resolver.resolve("br-1", "erofs")).toThrow(
      `no virtio disk with serial "br-1" (disks: vda=root, vdb=br-0) and no file ${shareDir}/br-1 on the disk share`,
    );
    writeFileSync(join(shareDir, "br-1"), "image");
    writeFileSync(join(shareDir, "br-2"), "image");
    expect(resolver.resolve("br-1", "erofs")).toBe(join(shareDir, "br-1"));
    expect(resolver.resolve("br-2", "erofs")).toBe(join(shareDir, "br-2"));
    expect(mounts).toEqual([`${DISK_SHARE_TAG} ${shareDir}`]);
  });

  it("names what is wrong: no share, a directory, a filesystem that needs a block device", () => {
    const broken = setup(new Error("mount 9p on /run/beetroot/disks: ENOENT"));
    expect(() => broken.resolver.resolve("br-1", "erofs")).toThrow(DiskNotFoundError);
    expect(() => broken.resolver.resolve("br-1", "erofs")).toThrow(
      `no virtio disk with serial "br-1" (disks: vda=root, vdb=br-0) and the disk share (9p tag ${DISK_SHARE_TAG}) cannot be mounted: mount 9p on /run/beetroot/disks: ENOENT`,
    );
    rmSync(dir, { recursive: true, force: true });
    const { resolver, shareDir } = setup();
    mkdirSync(join(shareDir, "br-3"), { recursive: true });
    expect(() => resolver.resolve("br-3", "erofs")).toThrow(/br-3 on the disk share is no regular file/);
    writeFileSync(join(shareDir, "br-4"), "image");
    expect(() => resolver.resolve("br-4", "ext4")).toThrow(
      'disk "br-4" is a file on the disk share, and ext4 cannot mount from a file (only erofs)',
    );
  });
});
