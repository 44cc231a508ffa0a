/**
 * crun as vminitd drives it: one invocation per lifecycle step, state under /run/crun, errors
 * logged as JSON to a per-container file (crun's stderr is the container's stderr during create and
 * exec, so its own messages must go elsewhere) and turned into the error of the failed step.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { GUEST_PATHS } from "../paths.ts";
import type { ProgramResult, ProgramRunner, StdioSpec } from "../runner.ts";

export const CRUN_ROOT = "/run/crun";
const CRUN_TIMEOUT_MS = 60_000;

export class CrunError extends Error {
  constructor(
    readonly step: string,
    readonly exitCode: number,
    detail: string,
  ) {
    super(`crun ${step} failed (exit ${exitCode}): ${detail}`);
    this.name = "CrunError";
  }
}

/** The messages crun appended to its JSON log since `offset` ({"msg": …, "level": "error"} lines). */
export function crunLogMessages(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const v = JSON.parse(line) as { msg?: unknown; level?: unknown };
      if (
        typeof v.msg === "string" &&
        (v.level === undefined || v.level === "error" || v.level === "warning")
      ) {
        out.push(v.msg.trim());
      }
    } catch {
      out.push(line.trim());
    }
  }
  return out;
}

export interface CrunCall {
  readonly stdio?: readonly [StdioSpec, StdioSpec, StdioSpec];
  readonly onSpawn?: (pid: number) => void;
}

export class Crun {
  constructor(
    private readonly run: ProgramRunner,
    private readonly logFile: string,
  ) {}

  private async call(step: string, args: readonly string[], opts: CrunCall = {}): Promise<ProgramResult> {
    const offset = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const argv = [
      GUEST_PATHS.crun,
      `--root=${CRUN_ROOT}`,
      `--log=file:${this.logFile}`,
      "--log-format=json",
      ...args,
    ];
    const r = await this.run(argv, {
      timeoutMs: CRUN_TIMEOUT_MS,
      maxOutputBytes: 64 * 1024,
      ...(opts.stdio ? { stdio: opts.stdio } : {}),
      ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
    });
    if (r.exitCode !== 0) {
      let logged: string[] = [];
      try {
        logged = crunLogMessages(readFileSync(this.logFile).subarray(offset).toString("utf8"));
      } catch {
        // no log written
      }
      const detail =
        [...logged, r.output.trim()].filter(Boolean).join("; ") || (r.timedOut ? "timed out" : "no message");
      throw new CrunError(step, r.exitCode, detail);
    }
    return r;
  }

  create(
    id: string,
    bundle: string,
    pidFile: string,
    consoleSocket: string | undefined,
    opts: CrunCall,
  ): Promise<ProgramResult> {
    const args = ["create", `--bundle=${bundle}`, `--pid-file=${pidFile}`];
    if (consoleSocket) args.push(`--console-socket=${consoleSocket}`);
    return this.call("create", [...args, id], opts);
  }

  start(id: string): Promise<ProgramResult> {
    return this.call("start", ["start", id]);
  }

  exec(
    id: string,
    processFile: string,
    pidFile: string,
    consoleSocket: string | undefined,
    opts: CrunCall,
  ): Promise<ProgramResult> {
    const args = ["exec", "--detach", `--process=${processFile}`, `--pid-file=${pidFile}`];
    if (consoleSocket) args.push(`--console-socket=${consoleSocket}`);
    return this.call("exec", [...args, id], opts);
  }

  kill(id: string, signal: number, all: boolean): Promise<ProgramResult> {
    return this.call("kill", ["kill", ...(all ? ["--all"] : []), id, String(signal)]);
  }

  delete(id: string, force: boolean): Promise<ProgramResult> {
    return this.call("delete", ["delete", ...(force ? ["--force"] : []), id]);
  }

  pause(id: string): Promise<ProgramResult> {
    return this.call("pause", ["pause", id]);
  }

  resume(id: string): Promise<ProgramResult> {
    return this.call("resume", ["resume", id]);
  }

  update(id: string, resourcesFile: string): Promise<ProgramResult> {
    return this.call("update", ["update", `--resources=${resourcesFile}`, id]);
  }
}
