import type { Logger } from "../log/logger.ts";
import { errorMessage } from "./errors.ts";

/**
 * Undo work as a stack of named steps: each step that created something pushes how to remove it;
 * on failure (or at teardown) the stack unwinds in reverse. A failing step is logged and the rest
 * still run — a half-released resource is better than a leaked one.
 */
export class CleanupStack {
  private readonly steps: Array<{ name: string; run: () => Promise<void> | void }> = [];

  push(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Forgets every step: the work succeeded and now belongs to someone else. */
  release(): void {
    this.steps.length = 0;
  }

  /** Moves the steps into a new stack (ownership transfer), leaving this one empty. */
  transfer(): CleanupStack {
    const next = new CleanupStack();
    next.steps.push(...this.steps);
    this.release();
    return next;
  }

  async unwind(log: Logger): Promise<string[]> {
    const failed: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.run();
      } catch (err) {
        failed.push(step.name);
        log.warn("cleanup step failed", { step: step.name, error: errorMessage(err) });
      }
    }
    return failed;
  }
}
