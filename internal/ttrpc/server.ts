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
import { Code, codeName } from "./codes.ts";
import { decodeRequest, encodeResponse, type RequestEnvelope } from "./envelope.ts";
import { TtrpcError } from "./errors.ts";
import { Flag, type FrameHeader, MAX_PAYLOAD, MessageType } from "./frame.ts";
import { errorText, nullLogger, type TtrpcLogger } from "./logger.ts";
import { metadataFromPairs } from "./metadata.ts";
import { InboundQueue } from "./queue.ts";
import type { CallContext, ServiceImpl } from "./types.ts";

export interface ServerOptions {
  logger?: TtrpcLogger;
  /** Per-message limit, both directions; defaults to (and may not exceed) the protocol's 4 MiB. */
  maxMessageBytes?: number;
  /** Calls in flight per connection beyond which new ones get ResourceExhausted. */
  maxConcurrentStreams?: number;
  /** Client-streamed messages queued per call before the connection stops being read. */
  streamHighWater?: number;
}

/** Something accepting connections for the server: closed when the server closes. */
export interface Listener {
  close(done: () => void): void;
}

type AnyHandler = (...args: never[]) => unknown;

interface RegisteredMethod {
  readonly desc: DescMethod;
  readonly handler: AnyHandler;
}

type Lookup = { method: RegisteredMethod } | { error: TtrpcError };

interface ConnectionConfig {
  readonly logger: TtrpcLogger;
  readonly maxMessageBytes: number;
  readonly maxConcurrentStreams: number;
  readonly streamHighWater: number;
  lookup(service: string, method: string): Lookup;
}

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === "object" && v !== null && Symbol.asyncIterator in v;
}

/** A TTRPC server: a set of services, served over any number of connections and listeners. */
export class Server {
  private readonly services = new Map<string, Map<string, RegisteredMethod>>();
  private readonly connections = new Set<ServerConnection>();
  private readonly listeners = new Set<Listener>();
  private readonly config: ConnectionConfig;
  private closing = false;

  constructor(opts: ServerOptions = {}) {
    const maxMessageBytes = Math.min(opts.maxMessageBytes ?? MAX_PAYLOAD, MAX_PAYLOAD);
    this.config = {
      logger: opts.logger ?? nullLogger,
      maxMessageBytes,
      maxConcurrentStreams: opts.maxConcurrentStreams ?? 4096,
      streamHighWater: opts.streamHighWater ?? 64,
      lookup: (service, method) => this.lookup(service, method),
    };
  }

  get logger(): TtrpcLogger {
    return this.config.logger;
  }

  /** Registers the implemented methods of `service`; calls to the others answer Unimplemented. */
  register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>): this {
    if (this.services.has(service.typeName)) {
      throw new Error(`ttrpc: service ${service.typeName} registered twice`);
    }
    const methods = new Map<string, RegisteredMethod>();
    const table = impl as Record<string, unknown>;
    for (const desc of service.methods) {
      const handler = table[desc.localName];
      if (handler === undefined) continue;
      if (typeof handler !== "function") {
        throw new Error(`ttrpc: handler for ${service.typeName}.${desc.name} is not a function`);
      }
      methods.set(desc.name, { desc, handler: handler.bind(impl) as AnyHandler });
    }
    for (const key of Object.keys(table)) {
      if (!service.methods.some((m) => m.localName === key)) {
        throw new Error(`ttrpc: ${service.typeName} has no method "${key}"`);
      }
    }
    this.services.set(service.typeName, methods);
    return this;
  }

  /** Serves one already-connected byte stream (a socket, a vsock, a test pair). */
  serveConnection(stream: ByteStream): ServerConnection {
    const conn = new ServerConnection(stream, this.config);
    if (this.closing) {
      conn.destroy();
      return conn;
    }
    this.connections.add(conn);
    conn.closed.then(() => this.connections.delete(conn));
    return conn;
  }

  /**
   * Closes `listener` with the server (see unix-listener.ts). A server that is already closing
   * refuses it.
   */
  trackListener(listener: Listener): void {
    if (this.closing) throw new Error("ttrpc: server is closed");
    this.listeners.add(listener);
  }

  /**
   * Stops listening and closes every connection. Graceful (the default): calls in flight run to
   * completion, new calls are refused with Unavailable, and connections end once idle; whatever is
   * still running after `timeoutMs` is cut off. Not graceful: handlers are aborted at once.
   */
  async close(opts: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.closing = true;
    const graceful = opts.graceful ?? true;
    const listenersClosed = [...this.listeners].map(
      (l) => new Promise<void>((resolve) => l.close(() => resolve())),
    );
    this.listeners.clear();
    const conns = [...this.connections];
    if (graceful) {
      const drained = Promise.all(conns.map((c) => c.shutdown()));
      if (opts.timeoutMs !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, opts.timeoutMs);
        });
        await Promise.race([drained, timedOut]);
        clearTimeout(timer);
        for (const c of conns) c.destroy();
      }
      await drained;
    } else {
      for (const c of conns) c.destroy();
      await Promise.all(conns.map((c) => c.closed));
    }
    await Promise.all(listenersClosed);
  }

  private lookup(service: string, method: string): Lookup {
    const methods = this.services.get(service);
    if (methods === undefined) return { error: new TtrpcError(Code.Unimplemented, `service ${service}`) };
    const m = methods.get(method);
    if (m === undefined) return { error: new TtrpcError(Code.Unimplemented, `method ${method}`) };
    return { method: m };
  }
}

/** One client connection: its streams, id rules, and shutdown. */
export class ServerConnection {
  /** Resolves when the underlying stream is gone. */
  readonly closed: Promise<void>;
  private readonly channel: Channel;
  private readonly calls = new Map<number, ServerCall>();
  private lastStreamId = 0;
  private draining = false;
  private resolveClosed!: () => void;
  private readonly logger: TtrpcLogger;

  constructor(
    stream: ByteStream,
    private readonly config: ConnectionConfig,
  ) {
    this.logger = config.logger;
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
      config.maxMessageBytes,
      true,
    );
  }

  /** Calls currently running on this connection. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Refuse new calls, let running ones finish, then end the connection. */
  shutdown(): Promise<void> {
    this.draining = true;
    if (this.calls.size === 0) this.channel.end();
    return this.closed;
  }

  /** Cut the connection now; running handlers see their signal abort with Unavailable. */
  destroy(): void {
    this.channel.destroy();
  }

  /** Sends a final status on a stream id without any call state (protocol violations). */
  sendStatus(id: number, err: TtrpcError): void {
    this.logger.debug("ttrpc: rejecting stream", {
      stream: id,
      code: codeName(err.code),
      error: err.message,
    });
    this.channel
      .send(id, MessageType.Response, 0, encodeResponse({ status: err, payload: new Uint8Array(0) }))
      .catch(() => {});
  }

  /** @internal */
  send(id: number, type: number, flags: number, payload: Uint8Array): Promise<void> {
    return this.channel.send(id, type, flags, payload);
  }

  /** @internal */
  pauseFor(call: ServerCall, on: boolean): void {
    if (on) this.channel.pause(call);
    else this.channel.resume(call);
  }

  /** @internal */
  callDone(call: ServerCall): void {
    this.calls.delete(call.id);
    this.channel.resume(call);
    if (this.draining && this.calls.size === 0) this.channel.end();
  }

  private onFrame(h: FrameHeader, payload: Uint8Array): void {
    if (h.streamId % 2 !== 1) {
      this.protocolError(h, "StreamID must be odd for client initiated streams");
      return;
    }
    if (h.type === MessageType.Request) this.onRequest(h, payload);
    else if (h.type === MessageType.Data) this.onData(h, payload);
    // Other types are reserved: containerd/ttrpc ignores them for forward compatibility.
    else
      this.logger.warn("ttrpc: protocol error: ignoring frame of unknown type", {
        stream: h.streamId,
        type: h.type,
      });
  }

  private protocolError(h: FrameHeader, message: string, code: number = Code.InvalidArgument): void {
    this.logger.warn(`ttrpc: protocol error: ${message}`, { stream: h.streamId, type: h.type });
    this.sendStatus(h.streamId, new TtrpcError(code, message));
  }

  private onOversized(h: FrameHeader): void {
    const err = new TtrpcError(
      Code.ResourceExhausted,
      `message length ${h.length} exceed maximum message size of ${this.config.maxMessageBytes}`,
    );
    this.logger.warn("ttrpc: discarding oversized message", { stream: h.streamId, length: h.length });
    const call = this.calls.get(h.streamId);
    if (call !== undefined) call.fail(err);
    else this.sendStatus(h.streamId, err);
  }

  private onRequest(h: FrameHeader, payload: Uint8Array): void {
    if (h.streamId <= this.lastStreamId) {
      this.protocolError(h, "StreamID cannot be re-used and must increment");
      return;
    }
    this.lastStreamId = h.streamId;
    let req: RequestEnvelope;
    try {
      req = decodeRequest(payload);
    } catch (err) {
      this.protocolError(h, `unmarshal request error: ${errorText(err)}`);
      return;
    }
    if (this.draining) {
      this.sendStatus(h.streamId, new TtrpcError(Code.Unavailable, "ttrpc: server shutting down"));
      return;
    }
    const found = this.config.lookup(req.service, req.method);
    if ("error" in found) {
      this.sendStatus(h.streamId, found.error);
      return;
    }
    if (this.calls.size >= this.config.maxConcurrentStreams) {
      this.sendStatus(
        h.streamId,
        new TtrpcError(
          Code.ResourceExhausted,
          `too many concurrent calls (${this.config.maxConcurrentStreams})`,
        ),
      );
      return;
    }
    const call = new ServerCall(this, h.streamId, found.method, req, h.flags, this.config);
    this.calls.set(call.id, call);
    call.start();
  }

  private onData(h: FrameHeader, payload: Uint8Array): void {
    const call = this.calls.get(h.streamId);
    if (call === undefined) {
      this.protocolError(h, "StreamID is no longer active");
      return;
    }
    call.onData(h.flags, payload);
  }

  private onClosed(err: Error | undefined): void {
    if (err !== undefined) this.logger.debug("ttrpc: connection closed", { error: err.message });
    const reason = new TtrpcError(Code.Unavailable, "ttrpc: connection closed");
    for (const call of [...this.calls.values()]) call.abort(reason);
    this.calls.clear();
    this.resolveClosed();
  }
}

/** One call on the server: decoding, the handler's life, and exactly one final frame. */
class ServerCall {
  private readonly controller = new AbortController();
  private readonly ctx: CallContext;
  private readonly input: InboundQueue<Message> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  private readonly kind: DescMethod["methodKind"];

  constructor(
    private readonly conn: ServerConnection,
    readonly id: number,
    private readonly method: RegisteredMethod,
    private readonly req: RequestEnvelope,
    private readonly requestFlags: number,
    private readonly config: ConnectionConfig,
  ) {
    this.kind = method.desc.methodKind;
    let deadline: number | undefined;
    if (req.timeoutNano !== 0n) deadline = Date.now() + Number(req.timeoutNano / 1_000_000n);
    this.ctx = {
      metadata: metadataFromPairs(req.metadata),
      signal: this.controller.signal,
      deadline,
      service: req.service,
      method: req.method,
    };
    if (this.kind === "client_streaming" || this.kind === "bidi_streaming") {
      this.input = new InboundQueue<Message>(config.streamHighWater, (on) => conn.pauseFor(this, on));
    }
  }

  start(): void {
    const ns = this.req.timeoutNano;
    if (ns < 0n) {
      this.fail(new TtrpcError(Code.DeadlineExceeded, "context deadline exceeded"));
      return;
    }
    if (ns > 0n) {
      const ms = Math.ceil(Number(ns) / 1e6);
      // setTimeout cannot wait longer than 2^31-1 ms; a deadline that far away is no deadline.
      if (ms <= 0x7fffffff) {
        this.timer = setTimeout(
          () => this.fail(new TtrpcError(Code.DeadlineExceeded, "context deadline exceeded")),
          ms,
        );
      }
    }
    const input = this.input;
    if (input !== undefined) {
      // containerd/ttrpc lets a client-streaming call's first message ride in the Request.
      if (this.req.hasPayload && !this.pushInput(this.req.payload)) return;
      if (this.requestFlags & Flag.RemoteClosed) {
        this.inputClosed = true;
        input.end();
      }
    }
    this.run().catch((err: unknown) => this.fail(TtrpcError.from(err)));
  }

  private async run(): Promise<void> {
    const { desc, handler } = this.method;
    const h = handler as (...args: unknown[]) => unknown;
    switch (this.kind) {
      case "unary": {
        const req = this.decodeFirst();
        if (req === undefined) return;
        const res = await h(req, this.ctx);
        this.finishWithMessage(res);
        return;
      }
      case "server_streaming": {
        const req = this.decodeFirst();
        if (req === undefined) return;
        await this.drainOutput(h(req, this.ctx, this.sendFn));
        this.finish(MessageType.Data, Flag.RemoteClosed | Flag.NoData, new Uint8Array(0));
        return;
      }
      case "client_streaming": {
        const res = await h(this.input, this.ctx);
        this.finishWithMessage(res);
        return;
      }
      case "bidi_streaming": {
        await this.drainOutput(h(this.input, this.ctx, this.sendFn));
        this.finish(MessageType.Data, Flag.RemoteClosed | Flag.NoData, new Uint8Array(0));
        return;
      }
    }
    throw new TtrpcError(Code.Unimplemented, `method kind of ${desc.name}`);
  }

  private readonly sendFn = (message: unknown): Promise<void> => {
    if (this.finished) {
      const reason = this.controller.signal.reason;
      return Promise.reject(
        reason instanceof TtrpcError ? reason : new TtrpcError(Code.Cancelled, "call finished"),
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = this.encodeOutput(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.conn.send(this.id, MessageType.Data, 0, bytes);
  };

  private async drainOutput(result: unknown): Promise<void> {
    if (isAsyncIterable(result)) {
      for await (const m of result) {
        if (this.finished) return;
        await this.sendFn(m);
      }
    } else {
      await result;
    }
  }

  private decodeFirst(): Message | undefined {
    try {
      return fromBinary(this.method.desc.input, this.req.payload);
    } catch (err) {
      this.fail(
        new TtrpcError(Code.InvalidArgument, `ttrpc: error unmarshalling payload: ${errorText(err)}`),
      );
      return undefined;
    }
  }

  private encodeOutput(message: unknown): Uint8Array {
    if (message === undefined || message === null || typeof message !== "object") {
      throw new TtrpcError(Code.Internal, `ttrpc: handler for ${this.method.desc.name} returned no message`);
    }
    const out = this.method.desc.output;
    let bytes: Uint8Array;
    try {
      bytes = toBinary(out, create(out, message as never));
    } catch (err) {
      throw new TtrpcError(Code.Internal, `ttrpc: error marshaling payload: ${errorText(err)}`);
    }
    if (bytes.byteLength > this.config.maxMessageBytes) {
      throw new TtrpcError(
        Code.ResourceExhausted,
        `message length ${bytes.byteLength} exceed maximum message size of ${this.config.maxMessageBytes}`,
      );
    }
    return bytes;
  }

  private pushInput(payload: Uint8Array): boolean {
    let msg: Message;
    try {
      msg = fromBinary(this.method.desc.input, payload);
    } catch (err) {
      this.fail(
        new TtrpcError(Code.InvalidArgument, `ttrpc: error unmarshalling payload: ${errorText(err)}`),
      );
      return false;
    }
    this.input!.push(msg);
    return true;
  }

  onData(flags: number, payload: Uint8Array): void {
    const input = this.input;
    if (input === undefined) {
      this.fail(
        new TtrpcError(Code.InvalidArgument, `data on non-client-streaming call ${this.method.desc.name}`),
      );
      return;
    }
    if (!input.accepting) {
      // The handler stopped reading or the client already closed its side.
      if (!this.finished && this.inputClosed) {
        this.fail(new TtrpcError(Code.InvalidArgument, "data handling error: stream closed"));
      }
      return;
    }
    if (!(flags & Flag.NoData) && !this.pushInput(payload)) return;
    if (flags & Flag.RemoteClosed) {
      this.inputClosed = true;
      input.end();
      if (payload.byteLength > 0)
        this.fail(new TtrpcError(Code.InvalidArgument, "data close message cannot include data"));
    }
  }

  private inputClosed = false;

  private finishWithMessage(res: unknown): void {
    if (this.finished) return;
    let bytes: Uint8Array;
    try {
      bytes = this.encodeOutput(res);
    } catch (err) {
      this.fail(TtrpcError.from(err));
      return;
    }
    const body = encodeResponse({ status: { code: 0, message: "", details: [] }, payload: bytes });
    if (body.byteLength > this.config.maxMessageBytes) {
      this.fail(
        new TtrpcError(
          Code.ResourceExhausted,
          `message length ${body.byteLength} exceed maximum message size of ${this.config.maxMessageBytes}`,
        ),
      );
      return;
    }
    this.finish(MessageType.Response, 0, body);
  }

  /** Ends the call with an error status (first outcome wins). */
  fail(err: TtrpcError): void {
    if (this.finished) {
      this.config.logger.debug("ttrpc: late outcome of finished call dropped", {
        stream: this.id,
        code: codeName(err.code),
        error: err.message,
      });
      return;
    }
    if (err.code === Code.DeadlineExceeded || err.code === Code.Unavailable || err.code === Code.Cancelled) {
      this.controller.abort(err);
    }
    this.finish(MessageType.Response, 0, encodeResponse({ status: err, payload: new Uint8Array(0) }));
  }

  /** The connection is gone: no frame can be sent, the handler is told via its signal. */
  abort(reason: TtrpcError): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.input?.end(reason);
    this.controller.abort(reason);
  }

  private finish(type: number, flags: number, body: Uint8Array): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.input?.stop();
    this.conn.send(this.id, type, flags, body).catch((err: unknown) => {
      this.config.logger.debug("ttrpc: could not send final frame", {
        stream: this.id,
        error: errorText(err),
      });
    });
    this.conn.callDone(this);
  }
}
