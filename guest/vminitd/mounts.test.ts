import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createLogger } from "./log.ts";
import { parseMountinfo } from "./mountinfo.ts";
import { applyMounts, EARLY_MOUNTS, type MountOps, type MountSpec } from "./mounts.ts";

const log = createLogger({ write: () => {} });

function fakeOps(already: string[], failing: string[] = []) {
  const mounted = new Set(already);
  const calls: string[] = [];
  const ops: MountOps = {
    isMounted: (t) => mounted.has(t),
    mkdirp: (p) => calls.push(`mkdir ${p}`),
    mount: (s: MountSpec) => {
      if (failing.includes(s.target)) throw new Error("ENODEV");
      mounted.add(s.target);
      calls.push(`mount ${s.fstype} ${s.target}`);
    },
  };
  return { ops, calls };
}

describe("applyMounts", () => {
  it("mounts in order and skips what the kernel already mounted", () => {
    const { ops, calls } = fakeOps(["/dev"]);
    const results = applyMounts(EARLY_MOUNTS, ops, log);
    expect(results.find((r) => r.target === "/dev")?.outcome).toBe("already-mounted");
    expect(calls.filter((c) => c.startsWith("mount")).slice(0, 3)).toEqual([
      "mount proc /proc",
      "mount sysfs /sys",
      "mount devpts /dev/pts",
    ]);
    // cgroup2 must come after /sys, its parent.
    expect(calls.indexOf("mount cgroup2 /sys/fs/cgroup")).toBeGreaterThan(calls.indexOf("mount sysfs /sys"));
  });

  it("fails the boot for a required mount, names it", () => {
    const { ops } = fakeOps([], ["/sys/fs/cgroup"]);
    expect(() => applyMounts(EARLY_MOUNTS, ops, log)).toThrow(
      "mounting cgroup2 on /sys/fs/cgroup failed: ENODEV",
    );
  });

  it("carries on past an optional one", () => {
    const { ops } = fakeOps([], ["/sys/kernel/debug"]);
    const r = applyMounts(EARLY_MOUNTS, ops, log);
    expect(r.find((x) => x.target === "/sys/kernel/debug")).toEqual({
      target: "/sys/kernel/debug",
      outcome: "failed-optional",
      error: "ENODEV",
    });
  });
});

describe("parseMountinfo", () => {
  it("parses fields around the optional-fields separator and unescapes paths", () => {
    const text = [
      "22 1 254:0 / / ro,relatime - erofs /dev/vda ro,user_xattr",
      "23 22 0:5 / /dev rw,nosuid shared:2 master:1 - devtmpfs devtmpfs rw,size=1024k",
      "40 22 0:40 / /mnt/with\\040space rw - tmpfs tmp\\011fs rw",
    ].join("\n");
    expect(parseMountinfo(text)).toEqual([
      { id: 22, parentId: 1, mountPoint: "/", fstype: "erofs", source: "/dev/vda", options: "ro,relatime" },
      {
        id: 23,
        parentId: 22,
        mountPoint: "/dev",
        fstype: "devtmpfs",
        source: "devtmpfs",
        options: "rw,nosuid",
      },
      {
        id: 40,
        parentId: 22,
        mountPoint: "/mnt/with space",
        fstype: "tmpfs",
        source: "tmp\tfs",
        options: "rw",
      },
    ]);
  });
  it("parses this machine's mountinfo", () => {
    const entries = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
    expect(entries.some((e) => e.mountPoint === "/proc" && e.fstype === "proc")).toBe(true);
  });
  it("rejects a line without the separator", () => {
    expect(() => parseMountinfo("1 2 3 4 5 6")).toThrow(/malformed mountinfo line/);
  });
});
