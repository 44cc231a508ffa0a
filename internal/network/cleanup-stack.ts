import type { Logger } from "../log/logger.ts";

/**
 * Undo steps, run last-in first-out. Each step is named, so a failed teardown says which
 * resource is left; every step runs even when an earlier one fails.
 */
export class CleanupStack {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];

  push(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Runs every step; returns the failures (an empty list when everything was released). */
  async unwind(log?: Logger): Promise<{ step: string; error: Error }[]> {
    const failures: { step: string; error: Error }[] = [];
    for (let s = this.steps.pop(); s !== undefined; s = this.steps.pop()) {
      try {
        await s.run();
        log?.debug("network cleanup step done", { step: s.name });
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        failures.push({ step: s.name, error });
        log?.warn("network cleanup step failed", { step: s.name, error: error.message });
      }
    }
    return failures;
  }
}
