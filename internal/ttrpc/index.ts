export type { ByteStream } from "./byte-stream.ts";
export { Client, type ClientOptions } from "./client.ts";
export { Code, type CodeName, type CodeValue, codeName } from "./codes.ts";
export { isTtrpcError, TtrpcError } from "./errors.ts";
export { Flag, HEADER_LENGTH, MAX_PAYLOAD, MessageType } from "./frame.ts";
export type { LogFields, TtrpcLogger as Logger } from "./logger.ts";
export { type Listener, Server, ServerConnection, type ServerOptions } from "./server.ts";
export {
  type BidiStreamingHandler,
  type CallContext,
  type CallOptions,
  type ClientMethod,
  type ClientStreamingHandler,
  type HandlerFor,
  type Metadata,
  type MetadataInit,
  NAMESPACE_METADATA_KEY,
  type Send,
  type ServerStreamingHandler,
  type ServiceImpl,
  type TypedClient,
  type UnaryHandler,
} from "./types.ts";
export { listenUnix } from "./unix-listener.ts";
