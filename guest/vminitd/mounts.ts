/**
 * The filesystems PID 1 mounts before anything else runs, as data, and the code that applies them
 * idempotently (the kernel may already have mounted devtmpfs; a restart of the logic must not stack
 * mounts). Required mounts failing is fatal for the boot; optional ones are logged.
 */
import type { Logger } from "./log.ts";

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_RELATIME = 0x20_0000;

export interface MountSpec {
  readonly source: string;
  readonly target: string;
  readonly fstype: string;
  readonly flags: number;
  readonly data: string | null;
  /** A failure is logged and the boot goes on (features some workloads need, not vminitd itself). */
  readonly optional?: boolean;
}

const SAFE = MS_NOSUID | MS_NODEV | MS_NOEXEC;

export const EARLY_MOUNTS: readonly MountSpec[] = [
  { source: "proc", target: "/proc", fstype: "proc", flags: SAFE, data: null },
  { source: "sysfs", target: "/sys", fstype: "sysfs", flags: SAFE, data: null },
  { source: "devtmpfs", target: "/dev", fstype: "devtmpfs", flags: MS_NOSUID, data: "mode=0755" },
  {
    source: "devpts",
    target: "/dev/pts",
    fstype: "devpts",
    flags: MS_NOSUID | MS_NOEXEC,
    // A private instance whose ptmx anyone may open: crun's console sockets allocate ptys here.
    data: "newinstance,ptmxmode=0666,mode=0620,gid=5",
  },
  { source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: MS_NOSUID | MS_NODEV, data: "mode=1777" },
  { source: "mqueue", target: "/dev/mqueue", fstype: "mqueue", flags: SAFE, data: null, optional: true },
  { source: "tmpfs", target: "/run", fstype: "tmpfs", flags: MS_NOSUID | MS_NODEV, data: "mode=0755" },
  { source: "tmpfs", target: "/tmp", fstype: "tmpfs", flags: MS_NOSUID | MS_NODEV, data: "mode=1777" },
  {
    source: "cgroup2",
    target: "/sys/fs/cgroup",
    fstype: "cgroup2",
    flags: SAFE | MS_RELATIME,
    data: "nsdelegate",
  },
  {
    source: "debugfs",
    target: "/sys/kernel/debug",
    fstype: "debugfs",
    flags: SAFE,
    data: null,
    optional: true,
  },
];

export interface MountOps {
  isMounted(target: string): boolean;
  mkdirp(path: string, mode: number): void;
  mount(spec: MountSpec): void;
}

export interface MountResult {
  readonly target: string;
  readonly outcome: "mounted" | "already-mounted" | "failed-optional";
  readonly error?: string;
}

export function applyMounts(specs: readonly MountSpec[], ops: MountOps, log: Logger): MountResult[] {
  const results: MountResult[] = [];
  for (const spec of specs) {
    if (ops.isMounted(spec.target)) {
      results.push({ target: spec.target, outcome: "already-mounted" });
      continue;
    }
    try {
      ops.mkdirp(spec.target, 0o755);
      ops.mount(spec);
      results.push({ target: spec.target, outcome: "mounted" });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (!spec.optional) throw new Error(`mounting ${spec.fstype} on ${spec.target} failed: ${error}`);
      log.warn("optional mount failed", { target: spec.target, fstype: spec.fstype, error });
      results.push({ target: spec.target, outcome: "failed-optional", error });
    }
  }
  return results;
}
