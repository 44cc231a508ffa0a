/**
 * What /proc says about processes: which of PID 1's children are zombies (the reaper's work list)
 * and which user processes are still alive (the shutdown's). Works on any directory laid out like
 * /proc so it can be tested on a fixture tree.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface ProcStat {
  readonly pid: number;
  /** One-letter state from /proc/<pid>/stat (R, S, D, Z, T, X, …). */
  readonly state: string;
  readonly ppid: number;
  readonly flags: number;
}

/** PF_KTHREAD in include/linux/sched.h: kernel threads cannot be signalled and never exit. */
const PF_KTHREAD = 0x0020_0000;

/** Parses /proc/<pid>/stat; the command name may contain spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf(" (");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open)
    throw new Error(`malformed /proc stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const pid = Number(text.slice(0, open));
  const rest = text.slice(close + 2).split(" ");
  const state = rest[0] ?? "";
  const ppid = Number(rest[1]);
  const flags = Number(rest[6]);
  if (!Number.isInteger(pid) || !Number.isInteger(ppid) || !Number.isFinite(flags) || state.length !== 1) {
    throw new Error(`malformed /proc stat line: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { pid, state, ppid, flags };
}

export function readProcStats(procDir = "/proc"): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync(procDir)) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(join(procDir, name, "stat"), "utf8");
    } catch {
      continue; // exited and reaped between readdir and read
    }
    out.push(parseStat(text));
  }
  return out;
}

export function zombieChildren(parent: number, procDir = "/proc"): number[] {
  return readProcStats(procDir)
    .filter((s) => s.ppid === parent && s.state === "Z")
    .map((s) => s.pid);
}

/** Processes that a signal can still end: not us, not kernel threads, not already zombies. */
export function liveUserProcesses(self: number, procDir = "/proc"): number[] {
  return readProcStats(procDir)
    .filter((s) => s.pid !== self && (s.flags & PF_KTHREAD) === 0 && s.state !== "Z" && s.state !== "X")
    .map((s) => s.pid);
}
