import { describe, expect, it } from "vitest";
import { type HostStat, type OciMount, planVolumes, VolumeError } from "./plan.ts";

const dir = { isDirectory: () => true, isFile: () => false };
const file = { isDirectory: () => false, isFile: () => true };
const socket = { isDirectory: () => false, isFile: () => false };
const host: Record<string, ReturnType<HostStat>> = {
  "/srv/data": dir,
  "/etc/hosts.pod": file,
  "/run/x.sock": socket,
};
const stat: HostStat = (p) => host[p];

const ctrDefaults: OciMount[] = [
  { destination: "/proc", type: "proc", source: "proc" },
  { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime"] },
  { destination: "/dev/pts", type: "devpts", source: "devpts" },
  { destination: "/dev/shm", type: "tmpfs", source: "shm" },
  { destination: "/dev/mqueue", type: "mqueue", source: "mqueue" },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["ro"] },
  { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro"] },
];

describe("planVolumes", () => {
  it("ctr's default mounts are the guest's own: no volumes", () => {
    expect(planVolumes(ctrDefaults, stat)).toEqual([]);
  });

  it("a bind of a host directory and of a file become volumes with their flags; the last ro/rw wins", () => {
    const v = planVolumes(
      [
        ...ctrDefaults,
        { destination: "/data", type: "bind", source: "/srv/data", options: ["rbind", "ro", "rw", "nosuid"] },
        {
          destination: "/etc/hosts",
          type: "bind",
          source: "/etc/hosts.pod",
          options: ["rbind", "rw", "ro", "nodev", "noexec"],
        },
      ],
      stat,
    );
    expect(v).toEqual([
      {
        index: 7,
        source: "/srv/data",
        destination: "/data",
        kind: "dir",
        readOnly: false,
        recursive: true,
        flags: ["nosuid"],
      },
      {
        index: 8,
        source: "/etc/hosts.pod",
        destination: "/etc/hosts",
        kind: "file",
        readOnly: true,
        recursive: true,
        flags: ["nodev", "noexec"],
      },
    ]);
  });

  it("type none with a bind option is a bind; plain bind is not recursive", () => {
    const v = planVolumes(
      [{ destination: "/d", type: "none", source: "/srv/data", options: ["bind"] }],
      stat,
    );
    expect(v.map((x) => [x.recursive, x.readOnly])).toEqual([[false, false]]);
  });

  it("/dev/shm and /etc/resolv.conf binds stay with the guest (private tmpfs, the pod's resolv.conf)", () => {
    const v = planVolumes(
      [
        { destination: "/dev/shm", type: "bind", source: "/nonexistent/shm", options: ["rbind"] },
        { destination: "/etc/resolv.conf", type: "bind", source: "/nonexistent/resolv", options: ["rbind"] },
      ],
      stat,
    );
    expect(v).toEqual([]);
  });

  it("a missing source is NotFound naming it, as runc fails", () => {
    const err = (() => {
      try {
        planVolumes([{ destination: "/data", type: "bind", source: "/srv/gone", options: ["rbind"] }], stat);
      } catch (e) {
        return e;
      }
    })() as VolumeError;
    expect(err).toBeInstanceOf(VolumeError);
    expect(err.code).toBe("not-found");
    expect(err.message).toBe("mount at /data: bind source /srv/gone: no such file or directory");
  });

  it("refuses what a VM cannot be given: sockets, relative sources, host file system types", () => {
    const cases: [OciMount, RegExp][] = [
      [{ destination: "/s", type: "bind", source: "/run/x.sock" }, /neither a directory nor a regular file/],
      [{ destination: "/r", type: "bind", source: "srv/data" }, /not an absolute path/],
      [{ destination: "/n", type: "nfs", source: "server:/x" }, /mount type "nfs" is not supported/],
      [{ destination: "/e", type: "ext4", source: "/dev/sdb1" }, /mount type "ext4" is not supported/],
    ];
    for (const [m, msg] of cases) {
      expect(() => planVolumes([m], stat)).toThrow(msg);
      try {
        planVolumes([m], stat);
      } catch (e) {
        expect((e as VolumeError).code).toBe("invalid-argument");
      }
    }
  });
});
