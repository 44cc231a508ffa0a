/**
 * The TypeScript implementation of the test service (proto/ttrpctest/v1/interop.proto). Its
 * behaviour must match test/ttrpc/gopeer's Go implementation knob for knob.
 */
import { create } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { TtrpcError } from "../errors.ts";
import type { CallContext, ServiceImpl } from "../types.ts";
import { type Call, Interop, type Reply, ReplySchema } from "./gen/ttrpctest/v1/interop_pb.ts";

export { Interop };

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

const patterns = new Map<number, Uint8Array>();

/**
 * `n` bytes of the pattern i & 0xff. Replies share one cached buffer per size (callers must not
 * mutate it), so benchmarks measure the RPC layer rather than a JS fill loop; gopeer does the same.
 */
export function patternBytes(n: number): Uint8Array {
  let p = patterns.get(n);
  if (p === undefined) {
    p = new Uint8Array(n);
    for (let i = 0; i < n; i++) p[i] = i & 0xff;
    if (patterns.size > 64) patterns.clear();
    patterns.set(n, p);
  }
  return p;
}

/** Applies a Call's knobs: sleeps, fails, throws; returns the reply it asks for. */
async function answer(call: Call, ctx: CallContext, index: number): Promise<Reply> {
  if (call.sleepMs > 0) await sleep(call.sleepMs, ctx.signal);
  if (call.throwMessage !== "") throw new Error(call.throwMessage);
  if (call.failCode !== 0) {
    const details =
      call.detailTypeUrl !== ""
        ? [create(AnySchema, { typeUrl: call.detailTypeUrl, value: call.detailValue })]
        : [];
    throw new TtrpcError(call.failCode, call.failMessage, details);
  }
  return create(ReplySchema, {
    payload: call.replyBytes > 0 ? patternBytes(call.replyBytes) : call.payload,
    metadataValues: call.metadataKey !== "" ? (ctx.metadata.get(call.metadataKey) ?? []) : [],
    index,
    deadlineRemainingMs: ctx.deadline === undefined ? -1n : BigInt(Math.max(0, ctx.deadline - Date.now())),
  });
}

export const interopImpl: ServiceImpl<typeof Interop> = {
  unary: (call, ctx) => answer(call, ctx, 0),

  async *serverStream(call, ctx) {
    const n = call.repeat;
    // Knobs apply per reply, except failure which ends the stream after the replies.
    const each = { ...call, failCode: 0, throwMessage: "" } as Call;
    for (let i = 0; i < n; i++) yield await answer(each, ctx, i);
    if (call.failCode !== 0 || call.throwMessage !== "")
      await answer({ ...call, sleepMs: 0 } as Call, ctx, n);
  },

  async clientStream(calls, ctx) {
    let count = 0;
    let bytes = 0n;
    let last: Call | undefined;
    for await (const call of calls) {
      count++;
      bytes += BigInt(call.payload.byteLength);
      last = call;
    }
    // Knobs (failure included) come from the last message and apply once the input has ended:
    // failing earlier would make the client's remaining Data frames hit a finished stream, which
    // crashes containerd/ttrpc's Go server (see docs/ttrpc.md).
    const reply = last
      ? await answer({ ...last, payload: new Uint8Array(0) } as Call, ctx, count)
      : create(ReplySchema);
    reply.receivedCount = count;
    reply.receivedBytes = bytes;
    return reply;
  },

  async *bidi(calls, ctx) {
    let i = 0;
    for await (const call of calls) {
      const n = Math.max(1, call.repeat);
      for (let k = 0; k < n; k++) yield await answer(call, ctx, i++);
    }
  },
};
