import { createConnection } from "node:net";
import {
  create,
  type DescMethod,
  type DescService,
  fromBinary,
  type Message,
  toBinary,
} from "@bufbuild/protobuf";
import type { ByteStream } from "./byte-stream.ts";
import { Channel } from "./channel.ts";
import { Code } from "./codes.ts";
import { decodeResponse, encodeRequest, type ResponseEnvelope } from "./envelope.ts";
import { TtrpcError } from "./errors.ts";
import { Flag, type FrameHeader, MAX_PAYLOAD, MessageType } from "./frame.ts";
import { errorText, nullLogger, type TtrpcLogger } from "./logger.ts";
import { metadataPairs, toMetadata } from "./metadata.ts";
import { InboundQueue } from "./queue.ts";
import type { CallOptions, TypedClient } from "./types.ts";

export interface ClientOptions {
  logger?: TtrpcLogger;
  /** Per-message limit, both directions; defaults to (and may not exceed) the protocol's 4 MiB. */
  maxMessageBytes?: number;
  /** Streamed responses queued per call before the connection stops being read. */
  streamHighWater?: number;
}

/** What the receive loop needs from one outstanding call. */
interface PendingCall {
  response(res: ResponseEnvelope): void;
  data(flags: number, payload: Uint8Array): void;
  fail(err: TtrpcError): void;
}

const EMPTY = new Uint8Array(0);
/** Stream ids are u32 and odd; past this the connection must be replaced. */
const MAX_STREAM_ID = 0xffff_ffff;

function statusError(res: ResponseEnvelope): TtrpcError | undefined {
  const s = res.status;
  if (s === undefined || s.code === Code.OK) return undefined;
  return new TtrpcError(s.code, s.message, s.details);
}

/**
 * A TTRPC client over one byte stream. Calls are multiplexed on odd, increasing stream ids;
 * every outcome a caller can see is a resolved value or a TtrpcError.
 */
export class Client {
  /** Resolves when the connection is gone: undefined after `close()`, else the reason. */
  readonly closed: Promise<Error | undefined>;
  private readonly channel: Channel;
  private readonly calls = new Map<number, PendingCall>();
  private readonly logger: TtrpcLogger;
  private readonly maxMessageBytes: number;
  private readonly streamHighWater: number;
  private nextId = 1;
  private closedByUs = false;
  private closeReason: TtrpcError | undefined;
  private resolveClosed!: (err: Error | undefined) => void;

  constructor(stream: ByteStream, opts: ClientOptions = {}) {
    this.logger = opts.logger ?? nullLogger;
    this.maxMessageBytes = Math.min(opts.maxMessageBytes ?? MAX_PAYLOAD, MAX_PAYLOAD);
    this.streamHighWater = opts.streamHighWater ?? 64;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.channel = new Channel(
      stream,
      {
        frame: (h, p) => this.onFrame(h, p),
        oversized: (h) => this.onOversized(h),
        closed: (err) => this.onClosed(err),
      },
      this.logger,
      this.maxMessageBytes,
      false,
    );
  }

  /** Connects to a unix socket; rejects with Unavailable if nothing accepts there. */
  static connect(path: string, opts: ClientOptions = {}): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      const onError = (err: Error) => {
        socket.destroy();
        reject(new TtrpcError(Code.Unavailable, `ttrpc: connect ${path}: ${err.message}`));
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        resolve(new Client(socket, opts));
      });
    });
  }

  /** A typed stub: one method per rpc, named as protobuf-es names them (lowerCamel). */
  service<S extends DescService>(service: S): TypedClient<S> {
    const stub: Record<string, unknown> = {};
    for (const m of service.methods) {
      switch (m.methodKind) {
        case "unary":
          stub[m.localName] = (req: unknown, opts?: CallOptions) => this.unary(m, req, opts);
          break;
        case "server_streaming":
          stub[m.localName] = (req: unknown, opts?: CallOptions) => this.serverStreaming(m, req, opts);
          break;
        case "client_streaming":
          stub[m.localName] = (reqs: AsyncIterable<unknown>, opts?: CallOptions) =>
            this.clientStreaming(m, reqs, opts);
          break;
        case "bidi_streaming":
          stub[m.localName] = (reqs: AsyncIterable<unknown>, opts?: CallOptions) =>
            this.bidiStreaming(m, reqs, opts);
          break;
      }
    }
    return stub as TypedClient<S>;
  }

  /** Closes the connection; calls still outstanding fail with Unavailable. */
  async close(): Promise<void> {
    if (!this.channel.isClosed) {
      this.closedByUs = true;
      this.channel.destroy();
    }
    await this.closed;
  }

  unary(method: DescMethod, request: unknown, opts: CallOptions = {}): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      let payload: Uint8Array;
      try {
        payload = this.encode(method.input, request);
      } catch (err) {
        reject(err);
        return;
      }
      const call = this.open(method, 0, payload, true, opts, {
        response: (res) => {
          call.done();
          const err = statusError(res);
          if (err !== undefined) reject(err);
          else this.decodeInto(method.output, res.payload, resolve, reject);
        },
        data: () => {
          call.done();
          reject(new TtrpcError(Code.Internal, "ttrpc: protocol error: data message on a unary call"));
        },
        fail: (err) => {
          call.done();
          reject(err);
        },
      });
    });
  }

  serverStreaming(method: DescMethod, request: unknown, opts: CallOptions = {}): AsyncIterable<Message> {
    let payload: Uint8Array;
    try {
      payload = this.encode(method.input, request);
    } catch (err) {
      return failedIterable(err);
    }
    return this.openStreaming(method, Flag.RemoteClosed, payload, true, opts, undefined);
  }

  clientStreaming(
    method: DescMethod,
    requests: AsyncIterable<unknown>,
    opts: CallOptions = {},
  ): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      const call = this.open(method, Flag.RemoteOpen, EMPTY, false, opts, {
        response: (res) => {
          call.done();
          const err = statusError(res);
          if (err !== undefined) reject(err);
          else this.decodeInto(method.output, res.payload, resolve, reject);
        },
        data: () => {
          call.done();
          reject(
            new TtrpcError(Code.Internal, "ttrpc: protocol error: data message from a non-streaming server"),
          );
        },
        fail: (err) => {
          call.done();
          reject(err);
        },
      });
      if (call.id !== 0) this.pump(method, call, requests);
    });
  }

  bidiStreaming(
    method: DescMethod,
    requests: AsyncIterable<unknown>,
    opts: CallOptions = {},
  ): AsyncIterable<Message> {
    return this.openStreaming(method, Flag.RemoteOpen, EMPTY, false, opts, requests);
  }

  private openStreaming(
    method: DescMethod,
    flags: number,
    payload: Uint8Array,
    withPayload: boolean,
    opts: CallOptions,
    requests: AsyncIterable<unknown> | undefined,
  ): AsyncIterable<Message> {
    const queue = new InboundQueue<Message>(this.streamHighWater, (on) => {
      if (on) this.channel.pause(queue);
      else this.channel.resume(queue);
    });
    const call = this.open(method, flags, payload, withPayload, opts, {
      response: (res) => {
        call.done();
        const err = statusError(res);
        if (err !== undefined) {
          queue.end(err);
          return;
        }
        // A Response with OK status closes a stream, its payload (if any) being the last message.
        if (res.payload.byteLength > 0) {
          this.decodeInto(
            method.output,
            res.payload,
            (m) => queue.push(m),
            (e) => queue.end(e),
          );
        }
        queue.end();
      },
      data: (dflags, p) => {
        if (!(dflags & Flag.NoData)) {
          let failed = false;
          this.decodeInto(
            method.output,
            p,
            (m) => queue.push(m),
            (e) => {
              failed = true;
              call.done();
              queue.end(e);
            },
          );
          if (failed) return;
        }
        if (dflags & Flag.RemoteClosed) {
          call.done();
          queue.end();
        }
      },
      fail: (err) => {
        call.done();
        queue.end(err);
      },
    });
    if (requests !== undefined && call.id !== 0) this.pump(method, call, requests);
    const iterator = queue[Symbol.asyncIterator]();
    let taken = false;
    return {
      [Symbol.asyncIterator]: () => {
        if (taken) throw new Error("ttrpc: a response stream can be iterated only once");
        taken = true;
        return {
          next: () => iterator.next(),
          return: () => {
            // The consumer is gone: forget the stream so later frames for it are dropped.
            call.done();
            return iterator.return!();
          },
        };
      },
    };
  }

  /** Sends each request as a Data frame, then the close; stops as soon as the call is over. */
  private pump(method: DescMethod, call: OpenCall, requests: AsyncIterable<unknown>): void {
    const run = async () => {
      for await (const req of requests) {
        if (call.isDone) return;
        const bytes = this.encode(method.input, req);
        await this.channel.send(call.id, MessageType.Data, 0, bytes);
      }
      if (!call.isDone)
        await this.channel.send(call.id, MessageType.Data, Flag.RemoteClosed | Flag.NoData, EMPTY);
    };
    run().catch((err: unknown) => {
      call.fail(
        err instanceof TtrpcError
          ? err
          : new TtrpcError(Code.Cancelled, `ttrpc: request stream failed: ${errorText(err)}`),
      );
    });
  }

  private encode(schema: DescMethod["input"], message: unknown): Uint8Array {
    if (message === undefined || message === null || typeof message !== "object") {
      throw new TtrpcError(Code.InvalidArgument, `ttrpc: request for ${schema.typeName} is not a message`);
    }
    let bytes: Uint8Array;
    try {
      bytes = toBinary(schema, create(schema, message as never));
    } catch (err) {
      throw new TtrpcError(
        Code.InvalidArgument,
        `ttrpc: error marshaling ${schema.typeName}: ${errorText(err)}`,
      );
    }
    if (bytes.byteLength > this.maxMessageBytes) {
      throw new TtrpcError(
        Code.ResourceExhausted,
        `message length ${bytes.byteLength} exceed maximum message size of ${this.maxMessageBytes}`,
      );
    }
    return bytes;
  }

  private decodeInto(
    schema: DescMethod["output"],
    payload: Uint8Array,
    ok: (m: Message) => void,
    fail: (e: TtrpcError) => void,
  ): void {
    let m: Message;
    try {
      m = fromBinary(schema, payload);
    } catch (err) {
      fail(new TtrpcError(Code.Internal, `ttrpc: error unmarshalling ${schema.typeName}: ${errorText(err)}`));
      return;
    }
    ok(m);
  }

  /**
   * Registers a call, sends its Request and arms deadline and cancellation. On any early failure
   * the handlers' `fail` runs synchronously and the returned call has id 0.
   */
  private open(
    method: DescMethod,
    flags: number,
    payload: Uint8Array,
    withPayload: boolean,
    opts: CallOptions,
    pending: PendingCall,
  ): OpenCall {
    const call = new OpenCall(this.calls, pending);
    // Early failures are delivered on a microtask: the caller's handlers refer to the returned call.
    const early = (err: TtrpcError): OpenCall => {
      call.isDone = true;
      queueMicrotask(() => pending.fail(err));
      return call;
    };
    const now = Date.now();
    let deadline = opts.deadline;
    if (opts.timeoutMs !== undefined)
      deadline = Math.min(deadline ?? Number.POSITIVE_INFINITY, now + opts.timeoutMs);
    if (this.channel.isClosed) {
      return early(this.closeReason ?? new TtrpcError(Code.Unavailable, "ttrpc: client closed"));
    }
    if (opts.signal?.aborted) {
      return early(cancelled(opts.signal));
    }
    if (deadline !== undefined && deadline <= now) {
      return early(new TtrpcError(Code.DeadlineExceeded, "context deadline exceeded"));
    }
    if (this.nextId > MAX_STREAM_ID) {
      return early(new TtrpcError(Code.Unavailable, "ttrpc: stream ids exhausted on this connection"));
    }
    let body: Uint8Array;
    try {
      body = encodeRequest({
        service: method.parent.typeName,
        method: method.name,
        payload: withPayload ? payload : EMPTY,
        timeoutNano:
          deadline === undefined ? 0n : BigInt(Math.max(1, Math.round(deadline - now))) * 1_000_000n,
        metadata: metadataPairs(toMetadata(opts.metadata)),
      });
    } catch (err) {
      return early(
        new TtrpcError(Code.InvalidArgument, `ttrpc: error marshaling request: ${errorText(err)}`),
      );
    }
    if (body.byteLength > this.maxMessageBytes) {
      return early(
        new TtrpcError(
          Code.ResourceExhausted,
          `message length ${body.byteLength} exceed maximum message size of ${this.maxMessageBytes}`,
        ),
      );
    }
    const id = this.nextId;
    this.nextId += 2;
    call.register(id, deadline, opts.signal);
    this.channel
      .send(id, MessageType.Request, flags, body)
      .catch((err: unknown) => call.fail(TtrpcError.from(err)));
    return call;
  }

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    const call = this.calls.get(h.streamId);
    if (call === undefined) {
      // A late answer to a call that timed out or was cancelled: nothing is waiting for it.
      this.logger.debug("ttrpc: message on inactive stream dropped", { stream: h.streamId, type: h.type });
      return;
    }
    if (h.type === MessageType.Response) {
      let res: ResponseEnvelope;
      try {
        res = decodeResponse(payload);
      } catch (err) {
        this.logger.warn("ttrpc: protocol error: undecodable response", { stream: h.streamId });
        call.fail(new TtrpcError(Code.Internal, `ttrpc: unmarshal response error: ${errorText(err)}`));
        return;
      }
      call.response(res);
    } else if (h.type === MessageType.Data) {
      call.data(h.flags, payload);
    } else {
      this.logger.warn("ttrpc: protocol error: ignoring frame of unknown type", {
        stream: h.streamId,
        type: h.type,
      });
    }
  }

  private onOversized(h: FrameHeader): void {
    this.logger.warn("ttrpc: discarding oversized message", { stream: h.streamId, length: h.length });
    this.calls
      .get(h.streamId)
      ?.fail(
        new TtrpcError(
          Code.ResourceExhausted,
          `message length ${h.length} exceed maximum message size of ${this.maxMessageBytes}`,
        ),
      );
  }

  private onClosed(err: Error | undefined): void {
    const reason = this.closedByUs
      ? new TtrpcError(Code.Unavailable, "ttrpc: client closed")
      : new TtrpcError(Code.Unavailable, `ttrpc: connection closed${err ? `: ${err.message}` : ""}`);
    this.closeReason = reason;
    for (const call of [...this.calls.values()]) call.fail(reason);
    this.calls.clear();
    this.resolveClosed(this.closedByUs ? undefined : (err ?? reason));
  }
}

function cancelled(signal: AbortSignal): TtrpcError {
  const r: unknown = signal.reason;
  if (r instanceof TtrpcError) return r;
  return new TtrpcError(Code.Cancelled, r instanceof Error ? r.message : "context canceled");
}

function failedIterable(err: unknown): AsyncIterable<Message> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }),
  };
}

/** Bookkeeping of one registered call: its slot in the map, its timer and abort listener. */
class OpenCall implements PendingCall {
  id = 0;
  isDone = false;
  private timer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;
  private readonly onAbort = () => {
    if (this.signal) this.fail(cancelled(this.signal));
  };

  constructor(
    private readonly calls: Map<number, PendingCall>,
    private readonly pending: PendingCall,
  ) {}

  register(id: number, deadline: number | undefined, signal: AbortSignal | undefined): void {
    this.id = id;
    this.calls.set(id, this);
    if (deadline !== undefined && Number.isFinite(deadline)) {
      const ms = deadline - Date.now();
      if (ms <= 0x7fffffff) {
        this.timer = setTimeout(
          () => this.fail(new TtrpcError(Code.DeadlineExceeded, "context deadline exceeded")),
          ms,
        );
      }
    }
    if (signal !== undefined) {
      this.signal = signal;
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  /** Forget the call; frames still arriving for it are dropped. Idempotent. */
  done(): void {
    if (this.isDone) return;
    this.isDone = true;
    if (this.id !== 0 && this.calls.get(this.id) === this) this.calls.delete(this.id);
    clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this.onAbort);
  }

  response(res: ResponseEnvelope): void {
    if (!this.isDone) this.pending.response(res);
  }

  data(flags: number, payload: Uint8Array): void {
    if (!this.isDone) this.pending.data(flags, payload);
  }

  fail(err: TtrpcError): void {
    if (!this.isDone) this.pending.fail(err);
  }
}
