import { execa } from "execa";

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Called with each line of stdout/stderr as it arrives, for long steps that must not look stuck. */
  readonly onLine?: (line: string) => void;
  readonly timeoutMs?: number;
  /** Output larger than this fails the call; Packages indexes are ~60 MB uncompressed. */
  readonly maxBuffer?: number;
}

/**
 * Runs a program and returns its output whatever the exit code; callers decide what a failure
 * means, because "package not installed" is an answer, not an error, for dpkg-query.
 */
export async function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = execa(file, args, {
    reject: false,
    stdin: "ignore",
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
    maxBuffer: opts.maxBuffer ?? 16 * 1024 * 1024,
  });
  if (opts.onLine) {
    const onLine = opts.onLine;
    let pending = "";
    const feed = (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      const parts = pending.split(/\r?\n|\r/);
      pending = parts.pop() ?? "";
      for (const p of parts) if (p.trim() !== "") onLine(p);
    };
    child.stdout?.on("data", feed);
    child.stderr?.on("data", feed);
  }
  const r = await child;
  if (r.failed && r.exitCode === undefined) {
    throw new Error(`could not run ${file}: ${r.shortMessage}`);
  }
  return { stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? ""), exitCode: r.exitCode ?? -1 };
}

/** Like `run`, but a non-zero exit becomes an error carrying the command and its stderr tail. */
export async function runChecked(
  file: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.exitCode !== 0) {
    const tail = (r.stderr || r.stdout).trim().split("\n").slice(-8).join("\n    ");
    throw new Error(`${file} ${args.join(" ")} exited with ${r.exitCode}:\n    ${tail}`);
  }
  return r;
}
