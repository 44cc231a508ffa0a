import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "./codes.ts";
import { encodeHeader, Flag, MessageType } from "./frame.ts";
import type { TtrpcLogger } from "./logger.ts";
import { CallSchema, ReplySchema } from "./testdata/gen/ttrpctest/v1/interop_pb.ts";
import { type Pair, startPair } from "./testdata/harness.ts";
import { RawPeer } from "./testdata/raw-peer.ts";

const SVC = "ttrpctest.v1.Interop";
const call = (init: Parameters<typeof create<typeof CallSchema>>[1] = {}) =>
  toBinary(CallSchema, create(CallSchema, init));

function recordingLogger(): TtrpcLogger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string) => lines.push(`${level} ${msg}`);
  return { lines, debug: rec("debug"), info: rec("info"), warn: rec("warn"), error: rec("error") };
}

let pair: Pair | undefined;
let peer: RawPeer | undefined;
afterEach(async () => {
  peer?.close();
  peer = undefined;
  await pair?.close();
  pair = undefined;
});

async function setup() {
  const logger = recordingLogger();
  pair = await startPair({ server: { logger } });
  peer = await RawPeer.open(pair.path);
  return { logger, peer };
}

describe("server protocol rules (raw frames)", () => {
  it("answers a plain unary request with a Response carrying OK status", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "Unary", call({ payload: new Uint8Array([5]) }));
    await peer.until((f) => f.length === 1);
    const [res] = peer.responses(1);
    expect(res?.status?.code ?? 0).toBe(Code.OK);
    expect(fromBinary(ReplySchema, res!.payload).payload[0]).toBe(5);
  });

  it("rejects even stream ids with InvalidArgument on that id", async () => {
    const { peer, logger } = await setup();
    peer.request(2, SVC, "Unary", call());
    await peer.until((f) => f.length === 1);
    expect(peer.responses(2)[0]?.status).toMatchObject({
      code: Code.InvalidArgument,
      message: "StreamID must be odd for client initiated streams",
    });
    expect(logger.lines.some((l) => l.startsWith("warn ttrpc: protocol error"))).toBe(true);
  });

  it("rejects re-used and decreasing stream ids; the connection stays usable", async () => {
    const { peer } = await setup();
    peer.request(5, SVC, "Unary", call());
    peer.request(5, SVC, "Unary", call());
    peer.request(3, SVC, "Unary", call());
    peer.request(7, SVC, "Unary", call());
    await peer.until((f) => f.length === 4);
    expect(
      peer
        .responses(5)
        .map((r) => r.status?.code ?? 0)
        .sort(),
    ).toEqual([Code.OK, Code.InvalidArgument]);
    expect(peer.responses(3)[0]?.status?.message).toBe("StreamID cannot be re-used and must increment");
    expect(peer.responses(7)[0]?.status?.code ?? 0).toBe(Code.OK);
  });

  it("answers an undecodable Request envelope with InvalidArgument", async () => {
    const { peer } = await setup();
    peer.frame(1, MessageType.Request, 0, new Uint8Array([0x0a, 0x05, 0x61]));
    await peer.until((f) => f.length === 1);
    expect(peer.responses(1)[0]?.status?.code).toBe(Code.InvalidArgument);
    expect(peer.responses(1)[0]?.status?.message).toMatch(/^unmarshal request error: /);
  });

  it("answers an undecodable method payload with InvalidArgument", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "Unary", new Uint8Array([0x0a, 0x7f]));
    await peer.until((f) => f.length === 1);
    expect(peer.responses(1)[0]?.status?.code).toBe(Code.InvalidArgument);
  });

  it("answers Unimplemented for unknown services and methods", async () => {
    const { peer } = await setup();
    peer.request(1, "nope.Svc", "Unary", call());
    peer.request(3, SVC, "Nope", call());
    await peer.until((f) => f.length === 2);
    expect(peer.responses(1)[0]?.status).toMatchObject({
      code: Code.Unimplemented,
      message: "service nope.Svc",
    });
    expect(peer.responses(3)[0]?.status).toMatchObject({ code: Code.Unimplemented, message: "method Nope" });
  });

  it("ignores frames of unknown type (forward compatibility) with a logged warning", async () => {
    const { peer, logger } = await setup();
    peer.frame(1, 9, 0, new Uint8Array([1, 2, 3]));
    peer.frame(1, MessageType.Response, 0, new Uint8Array(0));
    peer.request(3, SVC, "Unary", call());
    await peer.until((f) => f.length === 1);
    expect(peer.frames[0]?.header.streamId).toBe(3);
    expect(logger.lines.filter((l) => l.includes("unknown type"))).toHaveLength(2);
  });

  it("answers Data for an unknown stream with InvalidArgument", async () => {
    const { peer } = await setup();
    peer.frame(11, MessageType.Data, 0, call());
    await peer.until((f) => f.length === 1);
    expect(peer.responses(11)[0]?.status).toMatchObject({
      code: Code.InvalidArgument,
      message: "StreamID is no longer active",
    });
  });

  it("fails a call that receives Data although it is not client-streaming", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "Unary", call({ sleepMs: 500 }));
    peer.frame(1, MessageType.Data, 0, call());
    await peer.until((f) => f.length === 1);
    expect(peer.responses(1)[0]?.status?.code).toBe(Code.InvalidArgument);
    await new Promise((r) => setTimeout(r, 600));
    expect(peer.frames).toHaveLength(1);
  });

  it("discards an oversized frame, answers ResourceExhausted on its id, keeps the connection", async () => {
    const { peer } = await setup();
    const len = 4 * 1024 * 1024 + 1;
    peer.write(encodeHeader({ length: len, streamId: 1, type: MessageType.Request, flags: 0 }));
    peer.write(new Uint8Array(len));
    peer.request(3, SVC, "Unary", call({ payload: new Uint8Array([3]) }));
    await peer.until((f) => f.length === 2);
    expect(peer.responses(1)[0]?.status?.code).toBe(Code.ResourceExhausted);
    expect(peer.responses(3)[0]?.status?.code ?? 0).toBe(Code.OK);
  });

  it("fails a client-streaming call whose data frame is oversized", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "ClientStream", new Uint8Array(0), { flags: Flag.RemoteOpen });
    const len = 4 * 1024 * 1024 + 1;
    peer.write(encodeHeader({ length: len, streamId: 1, type: MessageType.Data, flags: 0 }));
    peer.write(new Uint8Array(len));
    await peer.until((f) => f.length === 1);
    expect(peer.responses(1)[0]?.status?.code).toBe(Code.ResourceExhausted);
  });

  it("client streaming over raw frames: data, close, answer; close with data is InvalidArgument", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "ClientStream", new Uint8Array(0), { flags: Flag.RemoteOpen });
    peer.frame(1, MessageType.Data, 0, call({ payload: new Uint8Array(10) }));
    peer.frame(1, MessageType.Data, Flag.RemoteClosed | Flag.NoData, new Uint8Array(0));
    await peer.until((f) => f.length === 1);
    const reply = fromBinary(ReplySchema, peer.responses(1)[0]!.payload);
    expect([reply.receivedCount, reply.receivedBytes]).toEqual([1, 10n]);

    peer.request(3, SVC, "ClientStream", new Uint8Array(0), { flags: Flag.RemoteOpen });
    peer.frame(3, MessageType.Data, Flag.RemoteClosed, call({ payload: new Uint8Array(1) }));
    await peer.until((f) => f.length === 2);
    expect(peer.responses(3)[0]?.status).toMatchObject({
      code: Code.InvalidArgument,
      message: "data close message cannot include data",
    });
  });

  it("takes a client-streaming call's first message from the Request payload (containerd/ttrpc rule)", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "ClientStream", call({ payload: new Uint8Array(7) }), {
      flags: Flag.RemoteOpen | Flag.RemoteClosed,
    });
    await peer.until((f) => f.length === 1);
    const reply = fromBinary(ReplySchema, peer.responses(1)[0]!.payload);
    expect([reply.receivedCount, reply.receivedBytes]).toEqual([1, 7n]);
  });

  it("ends server streams with Data flags remote-closed|no-data", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "ServerStream", call({ repeat: 2 }), { flags: Flag.RemoteClosed });
    await peer.until((f) => f.length === 3);
    expect(peer.summary().map(([id, type, flags]) => [id, type, flags])).toEqual([
      [1, MessageType.Data, 0],
      [1, MessageType.Data, 0],
      [1, MessageType.Data, Flag.RemoteClosed | Flag.NoData],
    ]);
  });

  it("answers a negative timeout with DeadlineExceeded", async () => {
    const { peer } = await setup();
    peer.request(1, SVC, "Unary", call(), { timeoutNano: -5n });
    await peer.until((f) => f.length === 1);
    expect(peer.responses(1)[0]?.status?.code).toBe(Code.DeadlineExceeded);
  });

  it("survives a truncated frame followed by EOF and logs it", async () => {
    const { peer, logger } = await setup();
    peer.write(
      encodeHeader({ length: 100, streamId: 1, type: MessageType.Request, flags: 0 }).subarray(0, 7),
    );
    peer.socket.end();
    await peer.closed;
    await new Promise((r) => setTimeout(r, 20));
    expect(logger.lines.some((l) => l.includes("connection ended inside a frame"))).toBe(true);
    expect(
      (await pair!.client.service((await import("./testdata/interop-service.ts")).Interop).unary({})).index,
    ).toBe(0);
  });

  it("refuses calls beyond maxConcurrentStreams with ResourceExhausted", async () => {
    pair = await startPair({ server: { maxConcurrentStreams: 2 } });
    peer = await RawPeer.open(pair.path);
    peer.request(1, SVC, "Unary", call({ sleepMs: 300 }));
    peer.request(3, SVC, "Unary", call({ sleepMs: 300 }));
    peer.request(5, SVC, "Unary", call());
    await peer.until((f) => f.length === 1);
    expect(peer.responses(5)[0]?.status?.code).toBe(Code.ResourceExhausted);
    await peer.until((f) => f.length === 3);
  });
});
