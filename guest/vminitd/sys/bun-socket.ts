/**
 * A connected stream socket fd adopted by Bun's native socket layer (`Bun.connect({ fd })`) and
 * shaped as the ByteStream a TTRPC connection needs. node:net would do the same, but loading it and
 * the node:stream machinery costs vminitd ~0.1 s of interpreted start-up in an emulated guest.
 *
 * Bun's `write` hands bytes to the kernel at once and reports how many it took (no buffering of
 * its own), so the unaccepted rest is queued here and flushed on Bun's `drain`; "drain" is emitted
 * to our listeners when a write had returned false and the queue is empty again, as Node does.
 * Bun-only.
 */
import type { ByteStream } from "../../../internal/ttrpc/byte-stream.ts";

/** As net.Socket's default writableHighWaterMark. */
const HIGH_WATER = 16 * 1024;

// biome-ignore lint/suspicious/noExplicitAny: one listener list serves events with different argument types
type Listener = (arg: any) => void;

export class BunSocketStream implements ByteStream {
  private socket: BunSocket | undefined;
  private readonly listeners = new Map<string, Listener[]>();
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private corked = false;
  private needDrain = false;
  private drainScheduled = false;
  private ending = false;
  private endSent = false;
  private errored = false;
  private endEmitted = false;
  private endCallbacks: (() => void)[] = [];
  private isDestroyed = false;
  private readPaused = false;

  /** Adopts `fd` (which the stream then owns and closes). */
  static async adopt(fd: number): Promise<BunSocketStream> {
    const stream = new BunSocketStream();
    const socket = await Bun.connect({
      fd,
      socket: {
        data: (_s, chunk) => stream.emit("data", chunk),
        drain: () => stream.flush(),
        end: () => stream.onEnd(),
        error: (_s, err) => stream.onError(err),
        close: (_s, err) => stream.onClose(err),
      },
    });
    stream.socket = socket;
    if (stream.readPaused) socket.pause();
    if (stream.isDestroyed) socket.terminate();
    else stream.flush();
    return stream;
  }

  get writable(): boolean {
    return !this.ending && !this.isDestroyed;
  }

  get writableLength(): number {
    return this.queued;
  }

  get writableNeedDrain(): boolean {
    return this.needDrain;
  }

  get destroyed(): boolean {
    return this.isDestroyed;
  }

  on(event: string, listener: Listener): this {
    const list = this.listeners.get(event);
    if (list) list.push(listener);
    else this.listeners.set(event, [listener]);
    return this;
  }

  once(event: string, listener: Listener): this {
    const wrapped: Listener = (arg) => {
      this.off(event, wrapped);
      listener(arg);
    };
    return this.on(event, wrapped);
  }

  off(event: string, listener: Listener): this {
    const list = this.listeners.get(event);
    const at = list?.indexOf(listener) ?? -1;
    if (list && at >= 0) list.splice(at, 1);
    return this;
  }

  write(chunk: Uint8Array): boolean {
    if (!this.writable) throw new Error("write after end or destroy");
    if (chunk.byteLength === 0) return !this.needDrain;
    this.queue.push(chunk);
    this.queued += chunk.byteLength;
    if (!this.corked) this.flush();
    if (this.queued > HIGH_WATER) this.needDrain = true;
    return !this.needDrain;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.flush();
  }

  end(cb?: () => void): this {
    if (cb) this.endCallbacks.push(cb);
    if (this.isDestroyed) return this;
    this.ending = true;
    this.flush();
    return this;
  }

  destroy(): this {
    if (this.isDestroyed) return this;
    this.isDestroyed = true;
    this.queue.length = 0;
    this.queued = 0;
    this.socket?.terminate();
    return this;
  }

  pause(): this {
    this.readPaused = true;
    this.socket?.pause();
    return this;
  }

  resume(): this {
    this.readPaused = false;
    this.socket?.resume();
    return this;
  }

  private flush(): void {
    const socket = this.socket;
    if (!socket || this.isDestroyed || this.corked) return;
    while (this.queue.length > 0) {
      const head = this.queue[0] as Uint8Array;
      const taken = socket.write(head);
      if (taken < 0) return;
      this.queued -= taken;
      if (taken < head.byteLength) {
        this.queue[0] = head.subarray(taken);
        return;
      }
      this.queue.shift();
    }
    if (this.needDrain) this.scheduleDrain();
    if (this.ending && !this.endSent) {
      this.endSent = true;
      socket.shutdown();
      const callbacks = this.endCallbacks;
      this.endCallbacks = [];
      queueMicrotask(() => {
        for (const cb of callbacks) cb();
      });
    }
  }

  /**
   * As in Node, "drain" never fires inside the write() or uncork() that emptied the queue: the
   * caller registers its listener only after write() returned false.
   */
  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      if (!this.needDrain || this.queued > 0 || this.isDestroyed) return;
      this.needDrain = false;
      this.emit("drain");
    });
  }

  private onError(err: Error): void {
    this.errored = true;
    this.emit("error", err);
  }

  private onEnd(): void {
    if (this.endEmitted) return;
    this.endEmitted = true;
    this.emit("end");
  }

  private onClose(err: Error | undefined): void {
    const byUs = this.isDestroyed;
    this.isDestroyed = true;
    if (err && !this.errored) this.onError(err);
    // Bun reports a peer's orderly close after our own FIN as a close alone; Node emits "end" first.
    else if (!err && !byUs && !this.errored) this.onEnd();
    this.emit("close");
  }

  private emit(event: string, arg?: unknown): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const listener of [...list]) listener(arg);
  }
}
