import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MountSchema } from "../../api/gen/containerd/types/mount_pb.ts";
import { setupMissing, skipReason } from "../../test/fixtures/skip.ts";
import { createLogger } from "../log/logger.ts";
import { LayerCache } from "./layer-cache.ts";
import { ErofsMountTranslator, templateRefs } from "./translator.ts";
import { UnsupportedMountError } from "./types.ts";

const log = createLogger({ fd: null });
const MKFS = "/usr/bin/mkfs.erofs";
const haveMkfs = !skipReason(
  import.meta.url,
  setupMissing(existsSync(MKFS) ? undefined : `${MKFS} missing (npx beetroot setup installs erofs-utils)`),
);
const isRoot = !skipReason(
  import.meta.url,
  setupMissing(
    process.getuid?.() === 0
      ? undefined
      : "the 40-layer merge needs root (mount); the test command runs as root",
  ),
);

describe.skipIf(!haveMkfs)("ErofsMountTranslator", () => {
  let dir: string;
  let cache: LayerCache;
  let serial: number;
  const alloc = () => `br-${serial++}`;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "beetroot-storage-"));
    cache = new LayerCache({ cacheDir: join(dir, "cache"), mkfsErofs: MKFS, log });
    serial = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function layerDir(name: string, files: Record<string, string>): string {
    const d = join(dir, "snapshots", name, "fs");
    mkdirSync(d, { recursive: true });
    for (const [f, content] of Object.entries(files)) writeFileSync(join(d, f), content);
    return d;
  }

  const mount = (type: string, source: string, options: string[]) =>
    create(MountSchema, { type, source, options });

  it("turns an overlayfs-snapshotter mount into cached EROFS disks, bottom layer first", async () => {
    const l1 = layerDir("1", { a: "one" });
    const l2 = layerDir("2", { b: "two" });
    const upper = layerDir("3", {});
    const t = new ErofsMountTranslator({ cache, log });
    const m = mount("overlay", "overlay", [
      "index=off",
      `workdir=${join(dir, "snapshots/3/work")}`,
      `upperdir=${upper}`,
      `lowerdir=${l2}:${l1}`,
    ]);
    const first = await t.translate({ containerId: "c", mounts: [m], allocateSerial: alloc });
    expect(first.disks.map((d) => [d.serial, d.readOnly])).toEqual([
      ["br-0", true],
      ["br-1", true],
    ]);
    for (const d of first.disks) expect(statSync(d.path).size).toBeGreaterThan(0);
    expect(first.mounts).toEqual([
      { type: "erofs", diskSerial: "br-0", options: ["ro"] },
      { type: "erofs", diskSerial: "br-1", options: ["ro"] },
      { type: "tmpfs", source: "tmpfs", options: ["mode=0755"] },
      {
        type: "format/mkdir/overlay",
        source: "overlay",
        options: [
          "X-containerd.mkdir.path={{ mount 2 }}/upper:0755",
          "X-containerd.mkdir.path={{ mount 2 }}/work:0755",
          "lowerdir={{ overlay 1 0 }}",
          "upperdir={{ mount 2 }}/upper",
          "workdir={{ mount 2 }}/work",
        ],
      },
    ]);
    // The image of l1 really holds l1's file.
    const listing = execFileSync("/usr/bin/dump.erofs", [
      "--ls",
      "--path=/",
      first.disks[0]!.path,
    ]).toString();
    expect(listing).toMatch(/\ba\b/);

    // A second container of the same image reuses the cached images.
    const second = await t.translate({ containerId: "d", mounts: [m], allocateSerial: alloc });
    expect(second.disks.map((d) => d.path)).toEqual(first.disks.map((d) => d.path));
  });

  it("passes the erofs snapshotter's layer.erofs files instead of building images", async () => {
    const l1 = layerDir("1", {});
    writeFileSync(join(dir, "snapshots/1/layer.erofs"), "image");
    const t = new ErofsMountTranslator({ cache, log });
    const out = await t.translate({
      containerId: "c",
      mounts: [mount("overlay", "overlay", [`lowerdir=${l1}`, "upperdir=/x/fs", "workdir=/x/work"])],
      allocateSerial: alloc,
    });
    expect(out.disks).toEqual([
      { path: join(dir, "snapshots/1/layer.erofs"), serial: "br-0", readOnly: true },
    ]);
    expect(out.mounts.at(-1)!.options).toContain("lowerdir={{ mount 0 }}");
  });

  it("re-expresses containerd 2.2 templated mounts over its disks", async () => {
    const f1 = join(dir, "l1.erofs");
    const f2 = join(dir, "l2.erofs");
    writeFileSync(f1, "1");
    writeFileSync(f2, "2");
    const t = new ErofsMountTranslator({ cache, log });
    const out = await t.translate({
      containerId: "c",
      mounts: [
        mount("erofs", f1, ["ro"]),
        mount("erofs", f2, ["ro"]),
        mount("format/mkdir/overlay", "overlay", [
          "X-containerd.mkdir.path=/host/upper:0755",
          "lowerdir={{ overlay 1 0 }}",
          "upperdir=/host/upper",
          "workdir=/host/work",
        ]),
      ],
      allocateSerial: alloc,
    });
    expect(out.disks.map((d) => d.path)).toEqual([f1, f2]);
    expect(out.mounts[2]).toEqual({ type: "tmpfs", source: "tmpfs", options: ["mode=0755"] });
  });

  it("refuses unknown mount types by name, empty mounts, and missing layers", async () => {
    const t = new ErofsMountTranslator({ cache, log });
    const run = (mounts: ReturnType<typeof mount>[]) =>
      t.translate({ containerId: "c", mounts, allocateSerial: alloc });
    await expect(run([mount("nfs", "srv:/x", [])])).rejects.toThrow(
      new UnsupportedMountError('unsupported rootfs mount type "nfs"'),
    );
    await expect(run([])).rejects.toThrow(/no rootfs mounts/);
    await expect(run([mount("overlay", "overlay", ["lowerdir=/nonexistent/fs"])])).rejects.toThrow(
      /does not exist/,
    );
    const img = join(dir, "x.erofs");
    writeFileSync(img, "x");
    await expect(run([mount("erofs", img, []), mount("mkfs/loop", "/b", [])])).rejects.toThrow(
      'unsupported rootfs mount transform "mkfs/" in "mkfs/loop"',
    );
  });

  it.skipIf(!isRoot)("merges the bottom layers of a 40-layer image to fit the disk budget", async () => {
    const dirs = Array.from({ length: 40 }, (_, i) => layerDir(String(i + 1), { [`f${i}`]: String(i) }));
    // A whiteout in the top of the merged range must hide the file below it.
    execFileSync("mknod", [join(dirs[20]!, "f0"), "c", "0", "0"]);
    const t = new ErofsMountTranslator({ cache, log, maxLayerDisks: 16 });
    const out = await t.translate({
      containerId: "c",
      mounts: [mount("overlay", "overlay", [`lowerdir=${[...dirs].reverse().join(":")}`])],
      allocateSerial: alloc,
    });
    expect(out.disks).toHaveLength(16);
    const merged = execFileSync("/usr/bin/dump.erofs", ["--ls", "--path=/", out.disks[0]!.path]).toString();
    expect(merged).toMatch(/\bf1\b/);
    expect(merged).toMatch(/\bf24\b/);
    expect(merged).not.toMatch(/\bf0\b/);
    expect(merged).not.toMatch(/\bf25\b/);
  });
});

describe("templateRefs", () => {
  it("resolves mount and overlay templates in containerd's order", () => {
    expect(templateRefs("/a", 3)).toBeUndefined();
    expect(templateRefs("{{ mount 2 }}", 3)).toEqual([2]);
    expect(templateRefs("{{ overlay 2 0 }}", 3)).toEqual([2, 1, 0]);
    expect(templateRefs("{{ overlay 0 1 }}", 3)).toEqual([0, 1]);
    expect(() => templateRefs("{{ overlay 0 5 }}", 3)).toThrow(/mount 5 of 3/);
    expect(() => templateRefs("{{ source 0 }}", 3)).toThrow(/unsupported mount template/);
  });
});
