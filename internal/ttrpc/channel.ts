import type { ByteStream } from "./byte-stream.ts";
import { Code } from "./codes.ts";
import { TtrpcError } from "./errors.ts";
import {
  encodeFrame,
  FrameDecoder,
  type FrameEvent,
  type FrameHeader,
  HEADER_LENGTH,
  MAX_PAYLOAD,
  writeHeader,
} from "./frame.ts";
import { errorText, type TtrpcLogger } from "./logger.ts";

export interface ChannelHandler {
  frame(header: FrameHeader, payload: Uint8Array): void;
  oversized(header: FrameHeader): void;
  /** Called exactly once, when the byte stream is gone; `err` is undefined for an orderly end. */
  closed(err: Error | undefined): void;
}

/** Above this payload size a frame is written as header + payload (writev) instead of copied into one buffer. */
const COPY_LIMIT = 16 * 1024;

const resolved = Promise.resolve();
const WRITE_PRESSURE = Symbol("write-pressure");
const YIELD = Symbol("yield");
const DISPATCH_BATCH = 64;

/**
 * One TTRPC connection's byte-level half: frames in, frames out, backpressure both ways.
 * Writes go straight to the stream; `send` resolves once the stream has accepted the frame
 * without exceeding its high-water mark, so a producer that awaits it can never outrun the peer.
 * Reading can be paused for named reasons (a slow consumer, too many queued responses); the
 * stream is resumed only when no reason remains.
 */
export class Channel {
  private readonly decoder: FrameDecoder;
  private drainWaiter: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | null =
    null;
  private readonly pauseReasons = new Set<unknown>();
  private closeError: Error | undefined;
  private done = false;
  private closeNotified = false;
  private dispatching = false;

  constructor(
    private readonly stream: ByteStream,
    private readonly handler: ChannelHandler,
    private readonly logger: TtrpcLogger,
    readonly maxPayload: number = MAX_PAYLOAD,
    /**
     * Stop reading while our own writes are backed up. Right for a server (a peer that sends requests
     * but never reads responses must not make us buffer unboundedly); wrong for a client, which
     * must keep reading to let the server's writes drain.
     */
    private readonly pauseOnWritePressure = false,
  ) {
    this.decoder = new FrameDecoder(maxPayload);
    stream.on("data", (chunk: Uint8Array) => this.onData(chunk));
    stream.on("end", () => {
      if (this.decoder.midFrame) {
        this.logger.warn("ttrpc: protocol error: connection ended inside a frame", {
          pendingBytes: this.decoder.pendingBytes,
        });
      }
      // The peer will send nothing more; TTRPC has no half-close, so the connection is over.
      this.finish(undefined);
    });
    stream.on("error", (err: Error) => this.finish(err));
    stream.on("close", () => this.finish(this.closeError));
    stream.on("drain", () => {
      this.resume(WRITE_PRESSURE);
      this.releaseDrainWaiter();
    });
  }

  get isClosed(): boolean {
    return this.done;
  }

  /** Bytes accepted for writing but not yet handed to the kernel. */
  get queuedBytes(): number {
    return this.stream.writableLength;
  }

  /**
   * Writes one frame. Rejects (never throws) with ResourceExhausted if the payload is over the
   * limit, or Unavailable if the connection is gone.
   */
  send(streamId: number, type: number, flags: number, payload: Uint8Array): Promise<void> {
    if (payload.byteLength > this.maxPayload) {
      return Promise.reject(
        new TtrpcError(
          Code.ResourceExhausted,
          `message length ${payload.byteLength} exceed maximum message size of ${this.maxPayload}`,
        ),
      );
    }
    if (this.done || !this.stream.writable) {
      return Promise.reject(new TtrpcError(Code.Unavailable, "ttrpc: connection closed"));
    }
    let ok: boolean;
    try {
      if (payload.byteLength <= COPY_LIMIT) {
        ok = this.stream.write(encodeFrame(streamId, type, flags, payload));
      } else {
        const header = new Uint8Array(HEADER_LENGTH);
        writeHeader(header, 0, { length: payload.byteLength, streamId, type, flags });
        this.stream.cork();
        this.stream.write(header);
        ok = this.stream.write(payload);
        this.stream.uncork();
      }
    } catch (err) {
      this.finish(err instanceof Error ? err : new Error(String(err)));
      return Promise.reject(new TtrpcError(Code.Unavailable, `ttrpc: write failed: ${errorText(err)}`));
    }
    if (ok) return resolved;
    if (this.pauseOnWritePressure) this.pause(WRITE_PRESSURE);
    return this.drained();
  }

  /** Resolves when the stream's write buffer is below its high-water mark. */
  drained(): Promise<void> {
    if (this.done) return Promise.reject(new TtrpcError(Code.Unavailable, "ttrpc: connection closed"));
    if (!this.stream.writableNeedDrain) return resolved;
    if (this.drainWaiter === null) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Nobody may be awaiting this yet; an unobserved rejection must not become an unhandled one.
      promise.catch(() => {});
      this.drainWaiter = { promise, resolve, reject };
    }
    return this.drainWaiter.promise;
  }

  pause(reason: unknown): void {
    if (this.pauseReasons.has(reason)) return;
    this.pauseReasons.add(reason);
    if (this.pauseReasons.size === 1) this.stream.pause();
  }

  resume(reason: unknown): void {
    if (!this.pauseReasons.delete(reason)) return;
    if (this.pauseReasons.size !== 0 || this.done) return;
    // Frames already read come first; the socket is read again only if they did not re-pause us.
    this.dispatch();
    if (this.pauseReasons.size === 0 && !this.done) this.stream.resume();
  }

  /** Orderly close: flush what was written, then end. */
  end(): void {
    if (this.done) return;
    this.stream.end();
  }

  /** Immediate close; every waiter sees `err` (or Unavailable). */
  destroy(err?: Error): void {
    if (err !== undefined && this.closeError === undefined) this.closeError = err;
    this.stream.destroy();
    this.finish(err);
  }

  private onData(chunk: Uint8Array): void {
    if (this.done) return;
    this.decoder.append(chunk);
    this.dispatch();
  }

  /**
   * Hands complete frames to the handler until a pause reason appears. At most DISPATCH_BATCH
   * frames per macrotask: handlers run and write between batches, so write pressure from a peer
   * that does not read stops dispatch before one large read has started thousands of calls.
   */
  private dispatch(): void {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      let n = 0;
      while (!this.done && this.pauseReasons.size === 0) {
        if (n === DISPATCH_BATCH) {
          this.pause(YIELD);
          setImmediate(() => this.resume(YIELD));
          break;
        }
        const ev: FrameEvent | undefined = this.decoder.next();
        if (ev === undefined) break;
        n++;
        if (ev.kind === "frame") this.handler.frame(ev.header, ev.payload);
        else this.handler.oversized(ev.header);
      }
    } catch (err) {
      // A bug in a frame handler must cost this connection, never the process.
      this.logger.error("ttrpc: internal error handling frame; closing connection", {
        error: errorText(err),
      });
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.dispatching = false;
    }
  }

  private releaseDrainWaiter(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    w?.resolve();
  }

  private finish(err: Error | undefined): void {
    if (err !== undefined && this.closeError === undefined) this.closeError = err;
    if (!this.done) {
      this.done = true;
      const w = this.drainWaiter;
      this.drainWaiter = null;
      w?.reject(new TtrpcError(Code.Unavailable, "ttrpc: connection closed"));
      if (!this.stream.destroyed) this.stream.destroy();
    }
    if (this.closeNotified) return;
    this.closeNotified = true;
    try {
      this.handler.closed(this.closeError);
    } catch (e) {
      this.logger.error("ttrpc: internal error in close handler", { error: errorText(e) });
    }
  }
}
