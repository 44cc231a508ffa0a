import type { MessageInitShape } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "./codes.ts";
import { TtrpcError } from "./errors.ts";
import type { CallSchema } from "./testdata/gen/ttrpctest/v1/interop_pb.ts";
import { type Pair, startPair } from "./testdata/harness.ts";
import { Interop, patternBytes } from "./testdata/interop-service.ts";

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.close();
  pair = undefined;
});

async function collect<T>(it: AsyncIterable<T>): Promise<{ items: T[]; error?: TtrpcError }> {
  const items: T[] = [];
  try {
    for await (const x of it) items.push(x);
  } catch (err) {
    if (!(err instanceof TtrpcError)) throw err;
    return { items, error: err };
  }
  return { items };
}

async function* gen<T>(items: T[], delayMs = 0): AsyncGenerator<T> {
  for (const x of items) {
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    yield x;
  }
}

describe("server streaming", () => {
  it("delivers every message in order (async generator handler)", async () => {
    pair = await startPair();
    const { items, error } = await collect(
      pair.client.service(Interop).serverStream({ repeat: 100, replyBytes: 10 }),
    );
    expect(error).toBeUndefined();
    expect(items.map((r) => r.index)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it("supports the (req, ctx, send) handler style", async () => {
    pair = await startPair({
      register: (s) =>
        s.register(Interop, {
          async serverStream(req, _ctx, send) {
            for (let i = 0; i < req.repeat; i++) await send({ index: i });
          },
        }),
    });
    const { items } = await collect(pair.client.service(Interop).serverStream({ repeat: 3 }));
    expect(items.map((r) => r.index)).toEqual([0, 1, 2]);
  });

  it("ends with the handler's error after the messages sent so far", async () => {
    pair = await startPair();
    const { items, error } = await collect(
      pair.client.service(Interop).serverStream({ repeat: 2, failCode: Code.Aborted, failMessage: "stop" }),
    );
    expect(items).toHaveLength(2);
    expect(error?.code).toBe(Code.Aborted);
    expect(error?.message).toBe("stop");
  });

  it("honours the deadline on a stream", async () => {
    pair = await startPair();
    const started = Date.now();
    const { items, error } = await collect(
      pair.client.service(Interop).serverStream({ repeat: 1000, sleepMs: 50 }, { timeoutMs: 200 }),
    );
    expect(error?.code).toBe(Code.DeadlineExceeded);
    expect(items.length).toBeLessThan(10);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("breaking out of the loop abandons the stream; the connection stays usable", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    let n = 0;
    for await (const _ of api.serverStream({ repeat: 10_000, replyBytes: 1000 })) {
      if (++n === 3) break;
    }
    expect(n).toBe(3);
    expect((await api.unary({ payload: new Uint8Array([1]) })).payload[0]).toBe(1);
  });

  it("cancellation via signal fails the iteration with Cancelled", async () => {
    pair = await startPair();
    const ac = new AbortController();
    const it = pair.client
      .service(Interop)
      .serverStream({ repeat: 1000, sleepMs: 20 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 60);
    const { error } = await collect(it);
    expect(error?.code).toBe(Code.Cancelled);
  });

  it("a response stream can be iterated only once", async () => {
    pair = await startPair();
    const it = pair.client.service(Interop).serverStream({ repeat: 1 });
    await collect(it);
    expect(() => it[Symbol.asyncIterator]()).toThrow(/only once/);
  });
});

describe("client streaming", () => {
  it("sends every message, then the close, and gets one reply", async () => {
    pair = await startPair();
    const reply = await pair.client
      .service(Interop)
      .clientStream(gen(Array.from({ length: 30 }, () => ({ payload: new Uint8Array(100) }))));
    expect(reply.receivedCount).toBe(30);
    expect(reply.receivedBytes).toBe(3000n);
  });

  it("works with zero messages", async () => {
    pair = await startPair();
    expect((await pair.client.service(Interop).clientStream(gen([]))).receivedCount).toBe(0);
  });

  it("a handler that answers early stops the client's sending", async () => {
    let produced = 0;
    pair = await startPair({
      register: (s) =>
        s.register(Interop, {
          async clientStream(reqs) {
            for await (const _ of reqs) return { receivedCount: 1 };
            return {};
          },
        }),
    });
    async function* endless() {
      for (;;) {
        produced++;
        yield { payload: new Uint8Array(10) };
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    expect((await pair.client.service(Interop).clientStream(endless())).receivedCount).toBe(1);
    const at = produced;
    await new Promise((r) => setTimeout(r, 50));
    expect(produced - at).toBeLessThanOrEqual(1);
  });

  it("an error from the handler reaches the client", async () => {
    pair = await startPair();
    await expect(
      pair.client.service(Interop).clientStream(gen([{}, { failCode: Code.OutOfRange, failMessage: "x" }])),
    ).rejects.toMatchObject({ code: Code.OutOfRange, message: "x" });
  });

  it("a failing request iterable fails the call locally", async () => {
    pair = await startPair();
    async function* broken() {
      yield {};
      throw new Error("source broke");
    }
    await expect(pair.client.service(Interop).clientStream(broken())).rejects.toMatchObject({
      code: Code.Cancelled,
      message: "ttrpc: request stream failed: source broke",
    });
  });

  it("an oversized message fails the call with ResourceExhausted", async () => {
    pair = await startPair();
    await expect(
      pair.client.service(Interop).clientStream(gen([{ payload: new Uint8Array(4 * 1024 * 1024 + 1) }])),
    ).rejects.toMatchObject({ code: Code.ResourceExhausted });
  });
});

describe("bidi streaming", () => {
  it("interleaves requests and replies", async () => {
    pair = await startPair();
    const calls: MessageInitShape<typeof CallSchema>[] = [
      { repeat: 2 },
      { payload: new Uint8Array([9]) },
      { repeat: 3 },
    ];
    const { items, error } = await collect(pair.client.service(Interop).bidi(gen(calls, 5)));
    expect(error).toBeUndefined();
    expect(items.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(items[2]?.payload[0]).toBe(9);
  });

  it("echoes as requests arrive (true duplex)", async () => {
    pair = await startPair();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* reqs() {
      yield { payload: new Uint8Array([1]) };
      await gate;
      yield { payload: new Uint8Array([2]) };
    }
    const it = pair.client.service(Interop).bidi(reqs())[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.value?.payload[0]).toBe(1);
    release();
    const second = await it.next();
    expect(second.value?.payload[0]).toBe(2);
    expect((await it.next()).done).toBe(true);
  });

  it("carries 64 KiB messages in volume", async () => {
    pair = await startPair();
    const big = patternBytes(65536);
    const { items } = await collect(
      pair.client.service(Interop).bidi(gen(Array.from({ length: 200 }, () => ({ payload: big })))),
    );
    expect(items).toHaveLength(200);
    expect(items.every((r) => r.payload.byteLength === 65536 && r.payload[65535] === 255)).toBe(true);
  });

  it("reports a mid-stream error after earlier replies", async () => {
    pair = await startPair();
    const { items, error } = await collect(
      pair.client.service(Interop).bidi(gen([{}, { failCode: Code.DataLoss, failMessage: "bad" }])),
    );
    expect(items).toHaveLength(1);
    expect(error?.code).toBe(Code.DataLoss);
  });

  it("sees metadata on streaming calls", async () => {
    pair = await startPair();
    const { items } = await collect(
      pair.client.service(Interop).bidi(gen([{ metadataKey: "k" }]), { metadata: { k: ["v"] } }),
    );
    expect(items[0]?.metadataValues).toEqual(["v"]);
  });
});
