import type { Ledger } from "../state/ledger.ts";
import { type ReleaseContext, type Releasers, releaseResource } from "../state/releasers.ts";
import type { Resource } from "../state/resources.ts";
import { CleanupStack } from "./cleanup.ts";

/**
 * Ties the ledger to the cleanup stack: a resource is recorded before it is created, its release
 * is on the stack before creation starts (so a half-created resource is released too), and its
 * ledger entry goes only after the release succeeded. What the launcher does in-process and what
 * `gc` does after a crash are then the same steps.
 */
export class ResourceTracker {
  readonly stack = new CleanupStack();

  constructor(
    readonly ledger: Ledger,
    private readonly releasers: Releasers,
    private readonly ctx: ReleaseContext,
  ) {}

  /**
   * Records `resource`, then runs `create(entryId)`. On cleanup, `release(value)` runs if
   * creation finished, the generic releaser for the resource's kind otherwise (or if no
   * `release` is given); then the entry is removed.
   */
  async acquire<T>(
    label: string,
    resource: Resource,
    create: (entryId: string) => Promise<T> | T,
    release?: (value: T) => Promise<void> | void,
  ): Promise<T> {
    const id = await this.ledger.record(resource, label);
    let created: { value: T } | undefined;
    this.stack.push(label, async () => {
      if (created && release) await release(created.value);
      else {
        // The entry may have been updated (a process gained its pid): release what it says now.
        const entry = (await this.ledger.list()).find((e) => e.id === id);
        await releaseResource(entry?.resource ?? resource, this.releasers, this.ctx);
      }
      await this.ledger.release(id);
    });
    created = { value: await create(id) };
    return created.value;
  }

  /** Adds a step that owns no ledger entry (closing a client, a listener, ...). */
  defer(label: string, run: () => Promise<void> | void): void {
    this.stack.push(label, run);
  }
}
