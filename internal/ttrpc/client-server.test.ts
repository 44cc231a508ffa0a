import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { Events } from "../../api/gen/containerd/services/events/ttrpc/v1/events_pb.ts";
import { Client } from "./client.ts";
import { Code } from "./codes.ts";
import { TtrpcError } from "./errors.ts";
import { Server } from "./server.ts";
import { CallSchema } from "./testdata/gen/ttrpctest/v1/interop_pb.ts";
import { type Pair, startPair, tempSocketPath } from "./testdata/harness.ts";
import { Interop, patternBytes } from "./testdata/interop-service.ts";
import { listenUnix } from "./unix-listener.ts";

let pair: Pair | undefined;
afterEach(async () => {
  await pair?.close();
  pair = undefined;
});

async function rejection(p: Promise<unknown>): Promise<TtrpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TtrpcError);
    return err as TtrpcError;
  }
  throw new Error("expected the call to fail");
}

describe("unary", () => {
  it("round-trips a message", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const reply = await api.unary({ payload: new TextEncoder().encode("hello") });
    expect(new TextDecoder().decode(reply.payload)).toBe("hello");
    expect(reply.deadlineRemainingMs).toBe(-1n);
  });

  it("accepts a created message as well as an init object", async () => {
    pair = await startPair();
    const reply = await pair.client.service(Interop).unary(create(CallSchema, { replyBytes: 3 }));
    expect([...reply.payload]).toEqual([0, 1, 2]);
  });

  it("multiplexes concurrent calls", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        api.unary({ payload: new Uint8Array([i & 0xff]), sleepMs: i % 5 }),
      ),
    );
    expect(replies.map((r) => r.payload[0])).toEqual(replies.map((_, i) => i & 0xff));
  });

  it("carries metadata, repeated keys in order", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const reply = await api.unary(
      { metadataKey: "containerd-namespace-ttrpc" },
      { metadata: { "containerd-namespace-ttrpc": ["k8s.io", "second"], other: "x" } },
    );
    expect(reply.metadataValues).toEqual(["k8s.io", "second"]);
  });

  it("returns status code, message and details from a handler's TtrpcError", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const err = await rejection(
      api.unary({
        failCode: Code.NotFound,
        failMessage: "no such task",
        detailTypeUrl: "type.googleapis.com/x.Y",
        detailValue: new Uint8Array([1, 2, 3]),
      }),
    );
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toBe("no such task");
    expect(err.details).toHaveLength(1);
    expect(err.details[0]?.typeUrl).toBe("type.googleapis.com/x.Y");
    expect([...(err.details[0]?.value ?? [])]).toEqual([1, 2, 3]);
  });

  it("maps a plain exception to Internal with its message and keeps serving", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const err = await rejection(api.unary({ throwMessage: "boom" }));
    expect(err.code).toBe(Code.Internal);
    expect(err.message).toBe("boom");
    expect((await api.unary({ payload: new Uint8Array([7]) })).payload[0]).toBe(7);
  });

  it("answers Unimplemented for an unknown service and an unregistered method", async () => {
    pair = await startPair({ register: (s) => s.register(Interop, { unary: () => ({}) }) });
    const api = pair.client.service(Interop);
    expect(await api.unary({})).toBeDefined();
    const events = pair.client.service(Events);
    const err = await rejection(events.forward({}));
    expect(err.code).toBe(Code.Unimplemented);
    expect(err.message).toBe("service containerd.services.events.ttrpc.v1.Events");
    const it2 = api.serverStream({ repeat: 1 });
    const err2 = await rejection(
      (async () => {
        for await (const _ of it2) {
          // unreachable
        }
      })(),
    );
    expect(err2.code).toBe(Code.Unimplemented);
    expect(err2.message).toBe("method ServerStream");
  });
});

describe("deadlines and cancellation", () => {
  it("sends timeout_nano; the server sees the deadline", async () => {
    pair = await startPair();
    const reply = await pair.client.service(Interop).unary({}, { timeoutMs: 5000 });
    expect(reply.deadlineRemainingMs).toBeGreaterThan(4000n);
    expect(reply.deadlineRemainingMs).toBeLessThanOrEqual(5000n);
  });

  it("enforces the deadline on the server: signal aborts, DeadlineExceeded is sent", async () => {
    let sawAbort: unknown;
    pair = await startPair({
      register: (s) =>
        s.register(Interop, {
          unary: (_req, ctx) =>
            new Promise((_resolve, reject) => {
              ctx.signal.addEventListener("abort", () => {
                sawAbort = ctx.signal.reason;
                reject(ctx.signal.reason);
              });
            }),
        }),
    });
    const started = Date.now();
    // The client's own timer would fire at the same moment; give it slack so the server's answer wins.
    const err = await rejection(pair.client.service(Interop).unary({}, { timeoutMs: 100 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 20));
    expect(sawAbort).toBeInstanceOf(TtrpcError);
    expect((sawAbort as TtrpcError).code).toBe(Code.DeadlineExceeded);
  });

  it("enforces the deadline on the client even if the server never answers", async () => {
    pair = await startPair({ register: (s) => s.register(Interop, { unary: () => new Promise(() => {}) }) });
    const err = await rejection(pair.client.service(Interop).unary({}, { timeoutMs: 50 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });

  it("fails an expired deadline before sending", async () => {
    pair = await startPair();
    const err = await rejection(pair.client.service(Interop).unary({}, { deadline: Date.now() - 1 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });

  it("cancels with an AbortSignal, before and during the call", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const ac = new AbortController();
    const p = api.unary({ sleepMs: 10_000 }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    expect((await rejection(p)).code).toBe(Code.Cancelled);
    expect((await rejection(api.unary({}, { signal: AbortSignal.abort() }))).code).toBe(Code.Cancelled);
    // The connection is still fine and the late answer is dropped.
    expect((await api.unary({ payload: new Uint8Array([1]) })).payload[0]).toBe(1);
  });
});

describe("limits", () => {
  it("carries payloads close to 4 MiB both ways", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const big = patternBytes(4 * 1024 * 1024 - 64);
    const reply = await api.unary({ payload: big });
    expect(reply.payload.byteLength).toBe(big.byteLength);
    expect(Buffer.compare(Buffer.from(reply.payload), Buffer.from(big))).toBe(0);
  });

  it("fails an oversized request locally with ResourceExhausted; the connection stays usable", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const err = await rejection(api.unary({ payload: new Uint8Array(4 * 1024 * 1024 + 1) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect((await api.unary({ payload: new Uint8Array([9]) })).payload[0]).toBe(9);
  });

  it("answers ResourceExhausted when the handler's reply is too large", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const err = await rejection(api.unary({ replyBytes: 4 * 1024 * 1024 }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect((await api.unary({ payload: new Uint8Array([9]) })).payload[0]).toBe(9);
  });
});

describe("connection life", () => {
  it("fails pending calls with Unavailable when the server goes away abruptly", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const p = api.unary({ sleepMs: 10_000 });
    await new Promise((r) => setTimeout(r, 20));
    await pair.server.close({ graceful: false });
    const err = await rejection(p);
    expect(err.code).toBe(Code.Unavailable);
    expect(await pair.client.closed).toBeInstanceOf(Error);
    expect((await rejection(api.unary({}))).code).toBe(Code.Unavailable);
  });

  it("graceful close lets in-flight calls finish and refuses new ones", async () => {
    pair = await startPair();
    const api = pair.client.service(Interop);
    const inflight = api.unary({ sleepMs: 150, payload: new Uint8Array([5]) });
    await new Promise((r) => setTimeout(r, 30));
    const closing = pair.server.close({ graceful: true });
    await new Promise((r) => setTimeout(r, 10));
    const refused = await rejection(api.unary({}));
    expect(refused.code).toBe(Code.Unavailable);
    expect((await inflight).payload[0]).toBe(5);
    await closing;
    await pair.client.closed;
  });

  it("client close fails its pending calls and resolves closed with undefined", async () => {
    pair = await startPair();
    const p = pair.client.service(Interop).unary({ sleepMs: 10_000 });
    await pair.client.close();
    expect((await rejection(p)).code).toBe(Code.Unavailable);
    expect(await pair.client.closed).toBeUndefined();
  });

  it("connect to a missing socket rejects with Unavailable", async () => {
    const { path, cleanup } = tempSocketPath();
    const err = await rejection(Client.connect(path));
    expect(err.code).toBe(Code.Unavailable);
    cleanup();
  });

  it("listen replaces a stale socket file but not a live one", async () => {
    const { path, cleanup } = tempSocketPath();
    const a = new Server();
    await listenUnix(a, path);
    const b = new Server();
    await expect(listenUnix(b, path)).rejects.toThrow(/EADDRINUSE/);
    await a.close();
    // A process killed while listening leaves its socket file behind.
    const { spawnSync } = await import("node:child_process");
    spawnSync(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    const { statSync } = await import("node:fs");
    expect(statSync(path).isSocket()).toBe(true);
    await listenUnix(b, path, { mode: 0o600 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const c = await Client.connect(path);
    await c.close();
    await b.close();
    cleanup();
  });
});

describe("server close with a deadline", () => {
  it("cuts off handlers still running after timeoutMs; their signal aborts with Unavailable", async () => {
    let reason: unknown;
    pair = await startPair({
      register: (s) =>
        s.register(Interop, {
          unary: (_req, ctx) =>
            new Promise((_resolve, reject) => {
              ctx.signal.addEventListener("abort", () => {
                reason = ctx.signal.reason;
                reject(ctx.signal.reason);
              });
            }),
        }),
    });
    const p = pair.client.service(Interop).unary({});
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await pair.server.close({ graceful: true, timeoutMs: 100 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await rejection(p)).code).toBe(Code.Unavailable);
    expect((reason as TtrpcError).code).toBe(Code.Unavailable);
  });
});
