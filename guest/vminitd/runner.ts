/**
 * Runs a helper program to completion (crun, the self-test binaries) with a time limit and a bounded
 * capture of what it prints, with Bun.spawn: node:child_process (Bun's streams over the same spawn)
 * cost ~0.2 s of interpreted start-up on its first use in the guest, i.e. in every VM's first
 * `crun create`. Each pid is left to Bun's waiter (`leaveToOwner`) in the same tick it is created,
 * so the guest's reaper never steals the status Bun is waiting for. Bun-only.
 */
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
  return async (argv, opts) => {
    const [file] = argv;
    if (file === undefined) throw new ProgramStartError("(nothing)", "empty argv");
    const started = performance.now();
    let child: BunSubprocess;
    try {
      child = Bun.spawn([...argv], {
        stdio: [...(opts.stdio ?? ["ignore", "pipe", "pipe"])],
        env: opts.env ?? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
      });
    } catch (err) {
      throw new ProgramStartError(file, err instanceof Error ? err.message : String(err));
    }
    // Same tick as the spawn: the reaper must not collect this pid before Bun's waiter does.
    const release = reaper ? reaper.leaveToOwner(child.pid) : () => {};
    opts.onSpawn?.(child.pid);
    const chunks: Uint8Array[] = [];
    let captured = 0;
    let truncated = false;
    const take = (chunk: Uint8Array) => {
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
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    try {
      // Done when the process exited and both pipes reached EOF (children it left may hold them).
      await Promise.all([child.exited, drain(child.stdout, take), drain(child.stderr, take)]);
    } finally {
      clearTimeout(timer);
      release();
    }
    const signal = child.signalCode;
    const signo = signal ? ((constants.signals as Record<string, number>)[signal] ?? 0) : 0;
    return {
      exitCode: child.exitCode ?? 128 + signo,
      signal,
      output: Buffer.concat(chunks).toString("utf8"),
      truncated,
      timedOut,
      durationMs: performance.now() - started,
    };
  };
}

async function drain(
  stream: ReadableStream<Uint8Array> | number | undefined,
  take: (chunk: Uint8Array) => void,
): Promise<void> {
  if (stream === undefined || typeof stream === "number") return;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) take(chunk);
}
