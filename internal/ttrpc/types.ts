import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";

/** Metadata as containerd/ttrpc's `MD` (map[string][]string); keys are kept as sent. */
export type Metadata = Map<string, string[]>;
export type MetadataInit = Metadata | Record<string, string | readonly string[]>;

/** The metadata key carrying the containerd namespace on every shim call. */
export const NAMESPACE_METADATA_KEY = "containerd-namespace-ttrpc";

export interface CallContext {
  readonly metadata: Metadata;
  /** Aborts on deadline, on connection loss and on forced server close; `reason` is a TtrpcError. */
  readonly signal: AbortSignal;
  /** Absolute deadline in ms since the epoch, when the caller sent `timeout_nano`. */
  readonly deadline?: number;
  /** Fully qualified service name as on the wire, e.g. `containerd.task.v2.Task`. */
  readonly service: string;
  /** Method name as on the wire (PascalCase, as in the .proto). */
  readonly method: string;
}

type In<M> = M extends { input: infer I extends DescMessage } ? I : never;
type Out<M> = M extends { output: infer O extends DescMessage } ? O : never;

export type Send<O extends DescMessage> = (message: MessageInitShape<O>) => Promise<void>;

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

/** Either yields the responses (async generator) or pushes them with `send` and resolves when done. */
export type ServerStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  ctx: CallContext,
  send: Send<O>,
) => AsyncIterable<MessageInitShape<O>> | Promise<void> | void;

export type ClientStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

export type BidiStreamingHandler<I extends DescMessage, O extends DescMessage> = (
  requests: AsyncIterable<MessageShape<I>>,
  ctx: CallContext,
  send: Send<O>,
) => AsyncIterable<MessageInitShape<O>> | Promise<void> | void;

export type HandlerFor<M> = M extends { methodKind: "unary" }
  ? UnaryHandler<In<M>, Out<M>>
  : M extends { methodKind: "server_streaming" }
    ? ServerStreamingHandler<In<M>, Out<M>>
    : M extends { methodKind: "client_streaming" }
      ? ClientStreamingHandler<In<M>, Out<M>>
      : M extends { methodKind: "bidi_streaming" }
        ? BidiStreamingHandler<In<M>, Out<M>>
        : never;

export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: HandlerFor<S["method"][K]> };

export interface CallOptions {
  /** Relative deadline; sent as `timeout_nano` and enforced locally (DeadlineExceeded). */
  timeoutMs?: number;
  /** Absolute deadline (ms since the epoch); the earlier of this and `timeoutMs` wins. */
  deadline?: number;
  metadata?: MetadataInit;
  /** Aborting fails the call locally with Cancelled (the protocol has no cancel message). */
  signal?: AbortSignal;
}

export type ClientMethod<M> = M extends { methodKind: "unary" }
  ? (request: MessageInitShape<In<M>>, opts?: CallOptions) => Promise<MessageShape<Out<M>>>
  : M extends { methodKind: "server_streaming" }
    ? (request: MessageInitShape<In<M>>, opts?: CallOptions) => AsyncIterable<MessageShape<Out<M>>>
    : M extends { methodKind: "client_streaming" }
      ? (
          requests: AsyncIterable<MessageInitShape<In<M>>>,
          opts?: CallOptions,
        ) => Promise<MessageShape<Out<M>>>
      : M extends { methodKind: "bidi_streaming" }
        ? (
            requests: AsyncIterable<MessageInitShape<In<M>>>,
            opts?: CallOptions,
          ) => AsyncIterable<MessageShape<Out<M>>>
        : never;

export type TypedClient<S extends DescService> = { [K in keyof S["method"]]: ClientMethod<S["method"][K]> };

export type AnyMethod = DescMethod;
