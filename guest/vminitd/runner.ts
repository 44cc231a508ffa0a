/**
 * Runs a helper program to completion (crun --version, the self-test binaries) with a time limit
 * and a bounded capture of what it prints. Uses node:child_process, which Bun implements on its own
 * spawn; each pid is left to Bun's waiter (`leaveToOwner`) in the same tick it is created, so the
 * guest's reaper never steals the status Bun is waiting for.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";

/** A child's fd 0-2: a descriptor of ours it inherits, /dev/null, or a pipe we capture (1 and 2 only). */
export type StdioSpec = number | "ignore" | "pipe";

export interface RunOptions {
  readonly timeoutMs: number;
  /** Captured stdout+stderr beyond this is dropped (and `truncated` set). */
  readonly maxOutputBytes: number;
  readonly env?: Record<string, string>;
  /** Default: stdin ignored, stdout and stderr captured. */
  readonly stdio?: readonly [StdioSpec, StdioSpec, StdioSpec];
  /** Called right after the child exists (its inherited descriptors are its own by then). */
  readonly onSpawn?: (pid: number) => void;
}

export interface ProgramResult {
  /** Exit code, or 128+n when signal n ended it. */
  readonly exitCode: number;
  readonly signal: string | null;
  /** stdout and stderr in the order chunks arrived. */
  readonly output: string;
  readonly truncated: boolean;
  readonly timedOut: boolean;
  readonly durationMs: number;
}

export type ProgramRunner = (argv: readonly string[], opts: RunOptions) => Promise<ProgramResult>;

export interface PidOwnership {
  leaveToOwner(pid: number): () => void;
}

export class ProgramStartError extends Error {
  constructor(argv0: string, cause: string) {
    super(`cannot run ${argv0}: ${cause}`);
    this.name = "ProgramStartError";
  }
}

export function createRunner(reaper?: PidOwnership): ProgramRunner {
  return (argv, opts) =>
    new Promise((resolve, reject) => {
      const [file, ...args] = argv;
      if (file === undefined) {
        reject(new ProgramStartError("(nothing)", "empty argv"));
        return;
      }
      const started = performance.now();
      const child = spawn(file, args, {
        stdio: [...(opts.stdio ?? ["ignore", "pipe", "pipe"])],
        env: opts.env ?? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      });
      const release = child.pid !== undefined && reaper ? reaper.leaveToOwner(child.pid) : () => {};
      if (child.pid !== undefined) opts.onSpawn?.(child.pid);
      const chunks: Buffer[] = [];
      let captured = 0;
      let truncated = false;
      let timedOut = false;
      const take = (chunk: Buffer) => {
        const room = opts.maxOutputBytes - captured;
        if (room <= 0) {
          truncated = true;
          return;
        }
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        if (part.length < chunk.length) truncated = true;
        chunks.push(part);
        captured += part.length;
      };
      child.stdout?.on("data", take);
      child.stderr?.on("data", take);
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, opts.timeoutMs);
      child.once("error", (err) => {
        clearTimeout(timer);
        release();
        reject(new ProgramStartError(file, err.message));
      });
      // "close" fires after the process exited and both pipes reached EOF.
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        release();
        const signo = signal ? (constants.signals[signal] ?? 0) : 0;
        resolve({
          exitCode: code ?? 128 + signo,
          signal: signal ?? null,
          output: Buffer.concat(chunks).toString("utf8"),
          truncated,
          timedOut,
          durationMs: performance.now() - started,
        });
      });
    });
}
