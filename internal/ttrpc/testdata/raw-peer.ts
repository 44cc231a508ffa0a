/** A bare socket speaking TTRPC frames by hand, for protocol-violation and fuzz tests. */
import { connect, type Socket } from "node:net";
import { decodeResponse, encodeRequest, type ResponseEnvelope } from "../envelope.ts";
import { encodeFrame, FrameDecoder, type FrameHeader, MessageType } from "../frame.ts";

export interface ReceivedFrame {
  header: FrameHeader;
  payload: Uint8Array;
}

export class RawPeer {
  readonly frames: ReceivedFrame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder(0xffffffff);
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk, (ev) => {
        if (ev.kind === "frame") this.frames.push({ header: ev.header, payload: ev.payload.slice() });
      });
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static open(path: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = connect({ path });
      s.once("connect", () => resolve(new RawPeer(s)));
      s.once("error", reject);
    });
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  frame(streamId: number, type: number, flags: number, payload: Uint8Array): void {
    this.write(encodeFrame(streamId, type, flags, payload));
  }

  request(
    streamId: number,
    service: string,
    method: string,
    payload: Uint8Array,
    opts: { flags?: number; timeoutNano?: bigint } = {},
  ): void {
    const body = encodeRequest({
      service,
      method,
      payload,
      timeoutNano: opts.timeoutNano ?? 0n,
      metadata: [],
    });
    this.frame(streamId, MessageType.Request, opts.flags ?? 0, body);
  }

  /** Waits until `pred` holds over the frames received so far. */
  async until(pred: (frames: ReceivedFrame[]) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.summary())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  responses(streamId: number): ResponseEnvelope[] {
    return this.frames
      .filter((f) => f.header.streamId === streamId && f.header.type === MessageType.Response)
      .map((f) => decodeResponse(f.payload));
  }

  summary(): Array<[number, number, number, number]> {
    return this.frames.map((f) => [f.header.streamId, f.header.type, f.header.flags, f.payload.byteLength]);
  }

  close(): void {
    this.socket.destroy();
  }
}
