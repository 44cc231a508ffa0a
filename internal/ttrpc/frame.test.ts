import { describe, expect, it } from "vitest";
import {
  encodeFrame,
  encodeHeader,
  FrameDecoder,
  type FrameEvent,
  HEADER_LENGTH,
  MAX_PAYLOAD,
  MessageType,
} from "./frame.ts";

function collect(dec: FrameDecoder, chunks: Uint8Array[]): FrameEvent[] {
  const out: FrameEvent[] = [];
  for (const c of chunks) dec.push(c, (e) => out.push(e));
  return out;
}

describe("frame header", () => {
  it("is 10 bytes big-endian: length, stream id, type, flags", () => {
    const h = encodeHeader({ length: 0x01020304, streamId: 0xa0b0c0d0, type: 3, flags: 5 });
    expect([...h]).toEqual([1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0, 3, 5]);
    expect(HEADER_LENGTH).toBe(10);
    expect(MAX_PAYLOAD).toBe(4 * 1024 * 1024);
  });
});

describe("FrameDecoder", () => {
  const frames = [
    encodeFrame(1, MessageType.Request, 0, new Uint8Array([1, 2, 3])),
    encodeFrame(3, MessageType.Data, 5, new Uint8Array(0)),
    encodeFrame(5, MessageType.Response, 0, new Uint8Array(300).fill(7)),
  ];
  const all = Buffer.concat(frames);

  function check(events: FrameEvent[]) {
    expect(
      events.map((e) => (e.kind === "frame" ? [e.header.streamId, e.header.type, e.header.flags] : [])),
    ).toEqual([
      [1, 1, 0],
      [3, 3, 5],
      [5, 2, 0],
    ]);
    const last = events[2];
    expect(last?.kind === "frame" && last.payload.byteLength).toBe(300);
  }

  it("parses frames delivered in one chunk", () => {
    check(collect(new FrameDecoder(), [all]));
  });

  it("parses frames delivered one byte at a time", () => {
    const chunks = [...all].map((b) => new Uint8Array([b]));
    check(collect(new FrameDecoder(), chunks));
  });

  it("parses frames split at every possible boundary", () => {
    for (let cut = 1; cut < all.length; cut++) {
      check(collect(new FrameDecoder(), [all.subarray(0, cut), all.subarray(cut)]));
    }
  });

  it("announces an oversized frame at its header and skips its payload without buffering it", () => {
    const limit = 100;
    const dec = new FrameDecoder(limit);
    const big = encodeFrame(7, MessageType.Request, 0, new Uint8Array(1000).fill(9));
    const next = encodeFrame(9, MessageType.Request, 0, new Uint8Array([4]));
    const events: FrameEvent[] = [];
    const stream = Buffer.concat([big, next]);
    for (let i = 0; i < stream.length; i += 37) {
      dec.push(stream.subarray(i, i + 37), (e) => events.push(e));
      expect(dec.pendingBytes).toBeLessThanOrEqual(limit + HEADER_LENGTH + 37);
    }
    expect(events.map((e) => [e.kind, e.header.streamId, e.header.length])).toEqual([
      ["oversized", 7, 1000],
      ["frame", 9, 1],
    ]);
  });

  it("costs nothing for a header claiming 4 GiB", () => {
    const dec = new FrameDecoder();
    const events: FrameEvent[] = [];
    const h = encodeHeader({ length: 0xffffffff, streamId: 1, type: 1, flags: 0 });
    dec.push(h, (e) => events.push(e));
    for (let i = 0; i < 100; i++) dec.push(new Uint8Array(65536), (e) => events.push(e));
    expect(events).toHaveLength(1);
    expect(events[0]?.kind).toBe("oversized");
    expect(dec.pendingBytes).toBe(0);
    expect(dec.midFrame).toBe(true);
  });

  it("reports a truncated frame as mid-frame", () => {
    const dec = new FrameDecoder();
    dec.push(all.subarray(0, 5), () => {});
    expect(dec.midFrame).toBe(true);
    const done = new FrameDecoder();
    done.push(all, () => {});
    expect(done.midFrame).toBe(false);
  });
});
