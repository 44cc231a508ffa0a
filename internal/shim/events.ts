import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { AnySchema, timestampNow } from "@bufbuild/protobuf/wkt";
import {
  TaskCreateSchema,
  TaskDeleteSchema,
  TaskExecAddedSchema,
  TaskExecStartedSchema,
  TaskExitSchema,
  TaskOOMSchema,
  TaskPausedSchema,
  TaskResumedSchema,
  TaskStartSchema,
} from "../../api/gen/containerd/events/task_pb.ts";
import { type Envelope, EnvelopeSchema } from "../../api/gen/containerd/types/event_pb.ts";
import type { Logger } from "../log/logger.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";

/** Topic → event message, as containerd's runtime v2 shims publish them. */
export const TOPICS = {
  "/tasks/create": TaskCreateSchema,
  "/tasks/start": TaskStartSchema,
  "/tasks/exit": TaskExitSchema,
  "/tasks/delete": TaskDeleteSchema,
  "/tasks/oom": TaskOOMSchema,
  "/tasks/exec-added": TaskExecAddedSchema,
  "/tasks/exec-started": TaskExecStartedSchema,
  "/tasks/paused": TaskPausedSchema,
  "/tasks/resumed": TaskResumedSchema,
} as const;

export type Topic = keyof typeof TOPICS;
export type EventInit<T extends Topic> = MessageInitShape<(typeof TOPICS)[T]>;

/** Delivers one envelope to containerd (Events/Forward on TTRPC_ADDRESS in production). */
export interface EventForwarder {
  forward(envelope: Envelope): Promise<void>;
  close(): void;
}

/**
 * The Any containerd expects: type_url is the bare full name (`containerd.events.TaskExit`), which
 * is what containerd's typeurl registry produces for these types and what its unpacking looks up.
 */
export function packAny<D extends DescMessage>(schema: D, init: MessageInitShape<D>) {
  return create(AnySchema, { typeUrl: schema.typeName, value: toBinary(schema, create(schema, init)) });
}

export function buildEnvelope<T extends Topic>(namespace: string, topic: T, event: EventInit<T>): Envelope {
  return create(EnvelopeSchema, {
    timestamp: timestampNow(),
    namespace,
    topic,
    event: packAny(TOPICS[topic] as DescMessage, event as MessageInitShape<DescMessage>),
  });
}

/** Failures worth retrying: containerd restarting or busy, or the connection dropping. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof TtrpcError)) return true; // socket errors (ECONNREFUSED, EPIPE…)
  return (
    err.code === Code.Unavailable ||
    err.code === Code.DeadlineExceeded ||
    err.code === Code.Cancelled ||
    err.code === Code.Unknown ||
    err.code === Code.ResourceExhausted
  );
}

export interface PublisherOptions {
  readonly forwarder: EventForwarder;
  readonly namespace: string;
  readonly log: Logger;
  /** Events waiting beyond this are dropped oldest-first (and logged): a dead containerd must not eat the shim's memory. */
  readonly maxQueue?: number;
  readonly maxAttempts?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Publishes task events to containerd strictly in the order they were queued. One queue for the
 * whole shim keeps every per-container order (create → start → exit → delete, exec-added →
 * exec-started → exit) because callers queue events in the order the lifecycle produced them;
 * a failed delivery is retried at the head of the queue, so nothing overtakes it.
 */
export class EventPublisher {
  private readonly queue: Envelope[] = [];
  private running = false;
  private idle: Array<() => void> = [];
  private closed = false;
  private readonly maxQueue: number;
  private readonly maxAttempts: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Counters for tests and logs. */
  readonly stats = { delivered: 0, dropped: 0, retries: 0 };

  constructor(private readonly opts: PublisherOptions) {
    this.maxQueue = opts.maxQueue ?? 4096;
    this.maxAttempts = opts.maxAttempts ?? 10;
    this.initialBackoffMs = opts.initialBackoffMs ?? 50;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms).unref()));
  }

  publish<T extends Topic>(topic: T, event: EventInit<T>): void {
    if (this.closed) {
      this.opts.log.warn("event after publisher close dropped", { topic });
      return;
    }
    this.queue.push(buildEnvelope(this.opts.namespace, topic, event));
    while (this.queue.length > this.maxQueue) {
      // Never the head while it is being delivered: it is already on its way.
      const dropped = this.queue.splice(this.running ? 1 : 0, 1)[0]!;
      this.stats.dropped++;
      this.opts.log.error("event queue full: dropped oldest event", { topic: dropped.topic });
    }
    if (!this.running) void this.pump();
  }

  /** Resolves once every queued event was delivered or given up on. */
  flush(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Flushes (bounded by `timeoutMs`) and closes the forwarder. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.flush(),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (this.queue.length > 0) {
      this.opts.log.error("events not delivered at shutdown", { count: this.queue.length });
    }
    this.opts.forwarder.close();
  }

  private async pump(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const envelope = this.queue[0]!;
        await this.deliver(envelope);
        this.queue.shift();
      }
    } finally {
      this.running = false;
      const waiters = this.idle;
      this.idle = [];
      for (const w of waiters) w();
    }
  }

  private async deliver(envelope: Envelope): Promise<void> {
    let backoff = this.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.forwarder.forward(envelope);
        this.stats.delivered++;
        return;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (!isTransient(err) || attempt >= this.maxAttempts) {
          this.stats.dropped++;
          this.opts.log.error("event dropped", { topic: envelope.topic, attempts: attempt, error: msg });
          return;
        }
        this.stats.retries++;
        this.opts.log.warn("event delivery failed, retrying", { topic: envelope.topic, attempt, error: msg });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
      }
    }
  }
}
