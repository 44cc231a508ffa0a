/**
 * Task events (exits, OOM kills) fanned out to every Events stream the host holds open, in the
 * order they happened. A subscriber sees what happened after it subscribed; a slow one is bounded.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { TaskEventSchema } from "../../../api/gen/beetroot/guest/v1/task_pb.ts";

export type TaskEventInit = MessageInitShape<typeof TaskEventSchema>;

const MAX_QUEUED = 10_000;

class Subscription {
  private readonly queue: TaskEventInit[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  dropped = 0;

  push(ev: TaskEventInit): void {
    if (this.ended) return;
    if (this.queue.length >= MAX_QUEUED) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(ev);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *drain(): AsyncGenerator<TaskEventInit> {
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }
}

export class EventHub {
  private readonly subs = new Set<Subscription>();

  publish(ev: TaskEventInit): void {
    for (const s of this.subs) s.push(ev);
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** Yields events until `signal` aborts (the call or its connection ended). */
  async *subscribe(signal: AbortSignal): AsyncGenerator<TaskEventInit> {
    const sub = new Subscription();
    this.subs.add(sub);
    const onAbort = () => sub.end();
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) sub.end();
    try {
      yield* sub.drain();
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.subs.delete(sub);
    }
  }
}
