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

/**
 * Direct children of `parent` from `/proc/<parent>/task/<tid>/children` (CONFIG_PROC_CHILDREN),
 * one file per thread: a child belongs to the thread that forked it, and orphans are reparented to
 * the leader. Undefined when the kernel has no such files.
 */
export function childrenOf(parent: number, procDir = "/proc"): number[] | undefined {
  const taskDir = join(procDir, String(parent), "task");
  let tids: string[];
  try {
    tids = readdirSync(taskDir);
  } catch {
    return undefined;
  }
  const out: number[] = [];
  let seen = false;
  for (const tid of tids) {
    let text: string;
    try {
      text = readFileSync(join(taskDir, tid, "children"), "utf8");
    } catch {
      continue; // the thread ended, or the kernel lacks the file
    }
    seen = true;
    // "12 34 " (space-separated, no newline)
    for (const pid of text.split(/\s+/)) if (pid !== "") out.push(Number(pid));
  }
  return seen ? out : undefined;
}

/**
 * Zombies among `parent`'s direct children. Under TCG every file read costs; reading the children
 * lists and only the children's stat files is ~10x fewer reads than all of /proc (kernel threads
 * included), and the reaper does it on every SIGCHLD. Falls back to the whole of /proc.
 */
export function zombieChildren(parent: number, procDir = "/proc"): number[] {
  const children = childrenOf(parent, procDir);
  if (children === undefined) {
    return readProcStats(procDir)
      .filter((s) => s.ppid === parent && s.state === "Z")
      .map((s) => s.pid);
  }
  const out: number[] = [];
  for (const pid of children) {
    let text: string;
    try {
      text = readFileSync(join(procDir, String(pid), "stat"), "utf8");
    } catch {
      continue; // reaped meanwhile (by Bun, its owner)
    }
    const s = parseStat(text);
    if (s.ppid === parent && s.state === "Z") out.push(pid);
  }
  return out;
}

/** Processes that a signal can still end: not us, not kernel threads, not already zombies. */
export function liveUserProcesses(self: number, procDir = "/proc"): number[] {
  return readProcStats(procDir)
    .filter((s) => s.pid !== self && (s.flags & PF_KTHREAD) === 0 && s.state !== "Z" && s.state !== "X")
    .map((s) => s.pid);
}
