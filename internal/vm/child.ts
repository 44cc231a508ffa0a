import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readSync, statSync } from "node:fs";

/** A spawned helper process (QEMU, vhost-device-vsock) and how it ended. */
export interface Child {
  readonly pid: number;
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  readonly exit: ChildExit | undefined;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export function describeExit(e: ChildExit): string {
  return e.signal ? `killed by ${e.signal}` : `exit status ${e.code}`;
}

/**
 * Spawns `file` with stdout ignored and stderr appended to `stderrFile` (a file, not a pipe: it
 * must survive our own death and never block the child). Rejects if the program cannot be run.
 * `passFds[i]` becomes the child's descriptor `3 + i` (e.g. TAPs for `-netdev tap,fd=N`); the
 * caller keeps its own copies and closes them when it likes.
 */
export async function spawnChild(
  file: string,
  args: readonly string[],
  stderrFile: string,
  passFds: readonly number[] = [],
): Promise<Child> {
  const fd = openSync(stderrFile, "a");
  let proc: ChildProcess;
  try {
    proc = spawn(file, args, { stdio: ["ignore", "ignore", fd, ...passFds] });
  } finally {
    closeSync(fd);
  }
  const pid = proc.pid;
  if (pid === undefined) {
    const err = await new Promise<Error>((resolve) => proc.once("error", resolve));
    throw new Error(`cannot run ${file}: ${err.message}`);
  }
  let exit: ChildExit | undefined;
  const exited = new Promise<ChildExit>((resolve) =>
    proc.once("exit", (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  proc.on("error", () => {}); // kill() on a dead child; the exit promise tells the story
  return {
    pid,
    process: proc,
    exited,
    get exit() {
      return exit;
    },
  };
}

/** SIGTERM, SIGKILL after `graceMs`, resolves when the child has exited (and been reaped). */
export async function terminateChild(c: Child, graceMs: number): Promise<ChildExit> {
  if (c.exit) return c.exit;
  c.process.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
  if (graceMs > 0) {
    const timer = setTimeout(() => c.process.kill("SIGKILL"), graceMs);
    try {
      return await c.exited;
    } finally {
      clearTimeout(timer);
    }
  }
  return c.exited;
}

/** The last `maxBytes` of a log file as text (starting at a line boundary), or "" if unreadable. */
export function tailFile(path: string, maxBytes = 4096): string {
  try {
    const size = statSync(path).size;
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    const fd = openSync(path, "r");
    try {
      readSync(fd, buf, 0, buf.length, start);
    } finally {
      closeSync(fd);
    }
    let text = buf.toString("utf8");
    if (start > 0) text = text.slice(text.indexOf("\n") + 1);
    return text.trimEnd();
  } catch {
    return "";
  }
}
