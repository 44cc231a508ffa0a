import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Process identity on Linux. A pid alone names nothing after its process died (pids are reused),
 * so beetroot records pid + start time (field 22 of /proc/<pid>/stat) + boot id at spawn and
 * kills a recorded pid only while all three still match.
 */
export interface ProcStat {
  readonly pid: number;
  readonly comm: string;
  /** R, S, D, Z, T, ... */
  readonly state: string;
  readonly ppid: number;
  /** Clock ticks after boot. */
  readonly startTime: number;
}

export function parseProcStat(text: string): ProcStat {
  // comm is in parentheses and may itself contain ") ": the last ')' ends it.
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open)
    throw new Error(`malformed /proc stat line: ${JSON.stringify(text.slice(0, 80))}`);
  const pid = Number.parseInt(text.slice(0, open), 10);
  const rest = text
    .slice(close + 2)
    .trim()
    .split(" ");
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const startTime = Number(rest[19]);
  if (
    !state ||
    !Number.isSafeInteger(pid) ||
    !Number.isSafeInteger(ppid) ||
    !Number.isSafeInteger(startTime)
  ) {
    throw new Error(`malformed /proc stat line: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return { pid, comm: text.slice(open + 1, close), state, ppid, startTime };
}

export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return undefined;
    throw err;
  }
}

let cachedBootId: string | undefined;
export function bootId(): string {
  cachedBootId ??= readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  return cachedBootId;
}

export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: number;
  readonly bootId: string;
}

/** Identity of a process that is running now (call right after spawn). */
export function identify(pid: number): ProcessIdentity | undefined {
  const stat = readProcStat(pid);
  if (!stat) return undefined;
  return { pid, startTime: stat.startTime, bootId: bootId() };
}

/**
 * "same": the recorded process is still running (zombies count as gone: they hold nothing but a
 * pid slot, and their parent reaps them). "gone": it exited or the host rebooted.
 */
export function checkIdentity(id: ProcessIdentity): "same" | "gone" {
  if (id.bootId !== bootId()) return "gone";
  const stat = readProcStat(id.pid);
  if (!stat || stat.state === "Z" || stat.startTime !== id.startTime) return "gone";
  return "same";
}

/** Pids (other than ours) whose command line contains `marker`. */
export function findByMarker(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    if (cmdline.split("\0").some((arg) => arg.includes(marker))) {
      const stat = readProcStat(pid);
      if (stat && stat.state !== "Z") found.push(pid);
    }
  }
  return found;
}

/**
 * SIGTERM, then SIGKILL after `graceMs`, then waits until the process is gone. Re-checks the
 * identity before every signal so a pid reused in between is never hit.
 */
export async function terminate(
  id: ProcessIdentity,
  opts: { graceMs: number; timeoutMs?: number },
): Promise<void> {
  const signal = (sig: NodeJS.Signals): boolean => {
    if (checkIdentity(id) === "gone") return false;
    try {
      process.kill(id.pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
      throw err;
    }
    return true;
  };
  if (!signal(opts.graceMs > 0 ? "SIGTERM" : "SIGKILL")) return;
  const termDeadline = Date.now() + opts.graceMs;
  while (Date.now() < termDeadline) {
    if (checkIdentity(id) === "gone") return;
    await sleep(10);
  }
  signal("SIGKILL");
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  while (checkIdentity(id) === "same") {
    if (Date.now() > deadline)
      throw new Error(`process ${id.pid} survived SIGKILL for ${opts.timeoutMs ?? 5000} ms`);
    await sleep(10);
  }
}
