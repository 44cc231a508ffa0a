/**
 * cgroup v2 for the containers: the host's cgroups are v1/hybrid, so the guest kernel is where
 * containers get v2. vminitd moves itself out of the root into a leaf (`/vminitd`) and enables the
 * controllers for the root's children, so crun can create container cgroups with cpu, memory, io,
 * pids and cpuset limits under any path the spec names.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage, type Logger } from "./log.ts";

export const WANTED_CONTROLLERS = ["cpu", "cpuset", "io", "memory", "pids"] as const;
export const INIT_LEAF = "vminitd";

export interface CgroupSetup {
  readonly available: readonly string[];
  readonly enabled: readonly string[];
  readonly missing: readonly string[];
}

export function setupCgroup2(root: string, pid: number, log: Logger): CgroupSetup {
  const available = readFileSync(join(root, "cgroup.controllers"), "utf8")
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  // The root cgroup could hold processes and delegate at once, but keeping vminitd (and everything
  // it spawns outside containers) in its own leaf makes its usage visible and keeps the root clean.
  const leaf = join(root, INIT_LEAF);
  mkdirSync(leaf, { recursive: true });
  writeFileSync(join(leaf, "cgroup.procs"), String(pid));
  const enabled: string[] = [];
  const missing: string[] = [];
  for (const c of WANTED_CONTROLLERS) {
    if (!available.includes(c)) {
      missing.push(c);
      continue;
    }
    // One write per controller: a single refused controller must not keep the others off.
    try {
      writeFileSync(join(root, "cgroup.subtree_control"), `+${c}`);
      enabled.push(c);
    } catch (err) {
      log.warn("cannot enable cgroup controller", { controller: c, error: errorMessage(err) });
      missing.push(c);
    }
  }
  return { available, enabled, missing };
}
