/**
 * A single-consumer async queue for the messages of one stream. The protocol has no flow control,
 * so the only brake on a fast sender is to stop reading the whole connection: the queue reports
 * pressure once it holds `highWater` items and releases it when the consumer has caught up (or gone),
 * which bounds memory to highWater items plus whatever one socket read delivered.
 */
export class InboundQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;
  private ended = false;
  private failure: unknown = undefined;
  private stopped = false;
  private pressured = false;
  private iterated = false;

  constructor(
    private readonly highWater: number,
    private readonly onPressure: (on: boolean) => void,
  ) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** False once the consumer has stopped iterating; further items are dropped. */
  get accepting(): boolean {
    return !this.stopped && !this.ended;
  }

  push(item: T): void {
    if (this.stopped || this.ended) return;
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (!this.pressured && this.size >= this.highWater) {
      this.pressured = true;
      this.onPressure(true);
    }
  }

  /** No more items; a consumer sees the buffered ones first, then `err` (if any) or the end. */
  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = err;
    const w = this.waiter;
    if (w !== null && this.size === 0) {
      this.waiter = null;
      if (err !== undefined) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.iterated) throw new Error("ttrpc: a message stream can be iterated only once");
    this.iterated = true;
    return {
      next: () => this.next(),
      return: () => {
        this.stop();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** The consumer gave up: drop everything and never hold memory for this stream again. */
  stop(): void {
    this.stopped = true;
    this.items = [];
    this.head = 0;
    this.release();
    const w = this.waiter;
    this.waiter = null;
    w?.resolve({ value: undefined, done: true });
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.items[this.head] as T;
      this.items[this.head] = undefined as T;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      if (this.size === 0) {
        this.items = [];
        this.head = 0;
      }
      if (this.pressured && this.size <= this.highWater >> 1) this.release();
      return Promise.resolve({ value, done: false });
    }
    if (this.stopped) return Promise.resolve({ value: undefined, done: true });
    if (this.ended) {
      this.release();
      if (this.failure !== undefined) {
        const f = this.failure;
        this.failure = undefined;
        this.stopped = true;
        return Promise.reject(f);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiter !== null)
      return Promise.reject(new Error("ttrpc: concurrent next() on a message stream"));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private release(): void {
    if (!this.pressured) return;
    this.pressured = false;
    this.onPressure(false);
  }
}
