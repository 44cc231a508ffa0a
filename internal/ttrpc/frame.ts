/**
 * TTRPC framing: every message is a 10-byte big-endian header
 * `u32 length | u32 stream_id | u8 type | u8 flags` followed by `length` payload bytes.
 */
export const HEADER_LENGTH = 10;
/** containerd/ttrpc `messageLengthMax`: payloads above this are refused, per message, not per connection. */
export const MAX_PAYLOAD = 4 << 20;

export const MessageType = { Request: 1, Response: 2, Data: 3 } as const;
export const Flag = {
  /** Request/Data: the sender will send nothing more on this stream. */
  RemoteClosed: 0x1,
  /** Request: the sender will follow with Data messages (client-streaming and bidi calls). */
  RemoteOpen: 0x2,
  /** Data: the frame carries no message (a bare close). */
  NoData: 0x4,
} as const;

export interface FrameHeader {
  readonly length: number;
  readonly streamId: number;
  readonly type: number;
  readonly flags: number;
}

export function writeHeader(target: Uint8Array, offset: number, h: FrameHeader): void {
  const view = new DataView(target.buffer, target.byteOffset + offset, HEADER_LENGTH);
  view.setUint32(0, h.length);
  view.setUint32(4, h.streamId);
  view.setUint8(8, h.type);
  view.setUint8(9, h.flags);
}

export function encodeHeader(h: FrameHeader): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH);
  writeHeader(out, 0, h);
  return out;
}

/** Header + payload in one buffer: one write, one syscall for small frames. */
export function encodeFrame(streamId: number, type: number, flags: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH + payload.byteLength);
  writeHeader(out, 0, { length: payload.byteLength, streamId, type, flags });
  out.set(payload, HEADER_LENGTH);
  return out;
}

export type FrameEvent =
  | { readonly kind: "frame"; readonly header: FrameHeader; readonly payload: Uint8Array }
  /** A frame whose declared length exceeds the limit: its payload is being skipped, never buffered. */
  | { readonly kind: "oversized"; readonly header: FrameHeader };

/**
 * Incremental frame parser. Holds at most one frame's bytes (≤ limit + header), because an
 * oversized frame is announced as soon as its header is seen and its payload is discarded as it
 * streams past, so a peer claiming 4 GiB costs nothing.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: FrameHeader | null = null;
  private discarding = 0;

  constructor(private readonly maxPayload: number = MAX_PAYLOAD) {}

  /** Bytes held for an incomplete frame (for memory accounting and tests). */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** True while the stream is mid-frame: EOF now means the peer truncated a message. */
  get midFrame(): boolean {
    return this.buffered > 0 || this.header !== null || this.discarding > 0;
  }

  /** Convenience for tests: append and emit every complete frame. */
  push(chunk: Uint8Array, emit: (event: FrameEvent) => void): void {
    this.append(chunk);
    for (let ev = this.next(); ev !== undefined; ev = this.next()) emit(ev);
  }

  append(chunk: Uint8Array): void {
    let data = chunk;
    if (this.discarding > 0) {
      const n = Math.min(this.discarding, data.byteLength);
      this.discarding -= n;
      data = data.subarray(n);
    }
    if (data.byteLength === 0) return;
    this.chunks.push(data);
    this.buffered += data.byteLength;
  }

  /**
   * The next complete frame (or oversized announcement), or undefined until more bytes arrive.
   * Pulling instead of pushing lets the connection stop mid-chunk when it must apply backpressure.
   */
  next(): FrameEvent | undefined {
    if (this.header === null) {
      if (this.discarding > 0 || this.buffered < HEADER_LENGTH) return undefined;
      const raw = this.take(HEADER_LENGTH);
      const view = new DataView(raw.buffer, raw.byteOffset, HEADER_LENGTH);
      const header: FrameHeader = {
        length: view.getUint32(0),
        streamId: view.getUint32(4),
        type: view.getUint8(8),
        flags: view.getUint8(9),
      };
      if (header.length > this.maxPayload) {
        const skipNow = Math.min(header.length, this.buffered);
        this.skip(skipNow);
        this.discarding = header.length - skipNow;
        return { kind: "oversized", header };
      }
      this.header = header;
    }
    if (this.buffered < this.header.length) return undefined;
    const header = this.header;
    this.header = null;
    return { kind: "frame", header, payload: this.take(header.length) };
  }

  /** Removes exactly n buffered bytes; zero-copy when they sit in one chunk. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first !== undefined && first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.byteLength <= want) {
        out.set(c, filled);
        filled += c.byteLength;
        this.chunks.shift();
      } else {
        out.set(c.subarray(0, want), filled);
        filled += want;
        this.chunks[0] = c.subarray(want);
      }
    }
    return out;
  }

  private skip(n: number): void {
    this.buffered -= n;
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.byteLength <= left) {
        left -= c.byteLength;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
  }
}
