/**
 * The real implementations of the seams the boot logic is written against (mount table, child
 * table, shutdown steps), on top of libc.ts. Bun-only.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { parseMountinfo } from "../mountinfo.ts";
import type { MountOps } from "../mounts.ts";
import { liveUserProcesses, zombieChildren } from "../proc-table.ts";
import type { ChildTable } from "../reaper.ts";
import { kill, mount, RebootCommand, reboot, SyscallError, sync, umount2, waitpidNoHang } from "./libc.ts";

function mountedTargets(): Set<string> {
  if (!existsSync("/proc/self/mountinfo")) return new Set();
  return new Set(parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8")).map((m) => m.mountPoint));
}

export const mountOps: MountOps = {
  isMounted: (target) => mountedTargets().has(target),
  mkdirp: (path, mode) => {
    if (!existsSync(path)) mkdirSync(path, { recursive: true, mode });
  },
  mount: (spec) => mount(spec.source, spec.target, spec.fstype, spec.flags, spec.data),
};

/** The /dev entries devtmpfs does not create but programs expect. */
export function populateDev(): void {
  const links: [string, string][] = [
    ["/dev/fd", "/proc/self/fd"],
    ["/dev/stdin", "/proc/self/fd/0"],
    ["/dev/stdout", "/proc/self/fd/1"],
    ["/dev/stderr", "/proc/self/fd/2"],
  ];
  for (const [path, target] of links) if (!existsSync(path)) symlinkSync(target, path);
  // Where binderfs gets mounted (by the binder self-test, and by convention in containers).
  mkdirSync("/dev/binderfs", { recursive: true, mode: 0o755 });
}

export function childTable(self: number): ChildTable {
  return {
    zombieChildren: () => zombieChildren(self),
    reap: (pid) => waitpidNoHang(pid),
  };
}

const MNT_DETACH = 2;

/** Unmounts everything but "/" in reverse mount order; returns what could not be unmounted. */
export function unmountAll(): string[] {
  const entries = parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
  const busy: string[] = [];
  for (const e of entries.reverse()) {
    if (e.mountPoint === "/") continue;
    try {
      umount2(e.mountPoint, 0);
    } catch (err) {
      if (err instanceof SyscallError && (err.code === "EINVAL" || err.code === "ENOENT")) continue; // already gone with its parent
      try {
        umount2(e.mountPoint, MNT_DETACH);
      } catch {
        busy.push(e.mountPoint);
      }
    }
  }
  return busy;
}

export const systemOps = {
  signalAll: (signal: number) => {
    kill(-1, signal);
  },
  liveProcesses: () => liveUserProcesses(process.pid),
  sync,
  unmountAll,
  powerOff: () => reboot(RebootCommand.powerOff),
  restart: () => reboot(RebootCommand.restart),
};
