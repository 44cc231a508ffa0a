/**
 * A stack of named cleanup steps: pushed as resources come into being, run newest first.
 * Every step runs once even if an earlier one failed; failures are collected with the step's
 * name so that the error says what was left behind.
 */
export interface CleanupFailure {
  readonly step: string;
  readonly error: Error;
}

export class CleanupError extends Error {
  constructor(readonly failures: readonly CleanupFailure[]) {
    super(`cleanup failed: ${failures.map((f) => `${f.step}: ${f.error.message}`).join("; ")}`);
    this.name = "CleanupError";
  }
}

export class CleanupStack {
  private readonly steps: Array<{ name: string; run: () => Promise<void> | void }> = [];
  private running: Promise<CleanupFailure[]> | undefined;

  push(name: string, run: () => Promise<void> | void): void {
    if (this.running) throw new Error(`cleanup already started; cannot add step "${name}"`);
    this.steps.push({ name, run });
  }

  get names(): string[] {
    return this.steps.map((s) => s.name);
  }

  /** Runs all steps (once; later calls get the same result) and returns the failures. */
  run(): Promise<CleanupFailure[]> {
    this.running ??= (async () => {
      const failures: CleanupFailure[] = [];
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.run();
        } catch (err) {
          failures.push({ step: step.name, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
      return failures;
    })();
    return this.running;
  }

  /** Like run(), but throws a CleanupError listing every failed step. */
  async runOrThrow(): Promise<void> {
    const failures = await this.run();
    if (failures.length) throw new CleanupError(failures);
  }
}
