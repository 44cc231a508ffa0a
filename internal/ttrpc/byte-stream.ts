/**
 * The part of a Node Duplex that a TTRPC connection uses. A net.Socket satisfies it as is; vminitd
 * under Bun passes an adapter over Bun's native socket, because loading node:net and node:stream
 * costs it ~0.1 s of interpreted start-up in an emulated guest.
 */
export interface ByteStream {
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown;
  on(event: "end" | "close" | "drain", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  once(event: "close" | "end" | "drain", listener: () => void): unknown;
  once(event: "error", listener: (err: Error) => void): unknown;
  /** false once the buffered bytes exceed the high-water mark: wait for "drain". */
  write(chunk: Uint8Array): boolean;
  /** Batches the writes until uncork (header + payload in one send). */
  cork(): void;
  uncork(): void;
  /** Flushes what was written, then half-closes; `cb` runs once that happened. */
  end(cb?: () => void): unknown;
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  readonly writable: boolean;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  readonly destroyed: boolean;
}
