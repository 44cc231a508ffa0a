/**
 * Built-in proofs the host can ask the guest to run (System.SelfTest). Each is a program shipped in
 * the image; they run one at a time, since several of them would share kernel state (binderfs).
 */
import { GUEST_PATHS } from "./paths.ts";
import type { ProgramRunner } from "./runner.ts";

export interface SelfTestDef {
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  readonly describe: string;
}

export const SELF_TESTS: Readonly<Record<string, SelfTestDef>> = {
  binder: {
    argv: [`${GUEST_PATHS.selftestDir}/binder-roundtrip`, GUEST_PATHS.binderfs],
    timeoutMs: 30_000,
    describe: "binderfs device allocation, context manager, transaction and reply between two processes",
  },
};

export interface SelfTestOutcome {
  readonly ok: boolean;
  readonly exitCode: number;
  readonly output: string;
  readonly durationSeconds: number;
}

export class UnknownSelfTestError extends Error {
  constructor(name: string, known: readonly string[]) {
    super(`no self-test named "${name}" (known: ${known.join(", ")})`);
    this.name = "UnknownSelfTestError";
  }
}

const MAX_OUTPUT_BYTES = 64 * 1024;

export class SelfTests {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly run: ProgramRunner,
    private readonly tests: Readonly<Record<string, SelfTestDef>> = SELF_TESTS,
  ) {}

  names(): string[] {
    return Object.keys(this.tests).sort();
  }

  execute(name: string): Promise<SelfTestOutcome> {
    const def = Object.hasOwn(this.tests, name) ? this.tests[name] : undefined;
    if (def === undefined) return Promise.reject(new UnknownSelfTestError(name, this.names()));
    const next = this.queue.then(async () => {
      const r = await this.run(def.argv, { timeoutMs: def.timeoutMs, maxOutputBytes: MAX_OUTPUT_BYTES });
      let output = r.output;
      if (r.truncated) output += "\n[output truncated]\n";
      if (r.timedOut) output += `\n[killed after ${def.timeoutMs} ms]\n`;
      return {
        ok: r.exitCode === 0 && !r.timedOut,
        exitCode: r.exitCode,
        output,
        durationSeconds: r.durationMs / 1000,
      };
    });
    this.queue = next.catch(() => {});
    return next;
  }
}
