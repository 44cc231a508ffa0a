/**
 * Memory stays bounded against peers that do not read, and producers are slowed to the pace of
 * the consumer: the protocol has no flow control, so the socket is the only brake.
 */

import { createServer, type Server as NetServer, type Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { Client } from "./client.ts";
import { encodeRequest } from "./envelope.ts";
import { encodeFrame, MessageType } from "./frame.ts";
import { Server, type ServerConnection } from "./server.ts";
import { CallSchema } from "./testdata/gen/ttrpctest/v1/interop_pb.ts";
import { type Pair, startPair, tempSocketPath } from "./testdata/harness.ts";
import { Interop, interopImpl } from "./testdata/interop-service.ts";
import { RawPeer } from "./testdata/raw-peer.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

let pair: Pair | undefined;
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await pair?.close();
  pair = undefined;
});

/** A server whose connections (and their sockets) the test can inspect. */
async function inspectableServer(): Promise<{ path: string; sockets: Socket[]; conns: ServerConnection[] }> {
  const { path, cleanup } = tempSocketPath();
  const server = new Server().register(Interop, interopImpl);
  const sockets: Socket[] = [];
  const conns: ServerConnection[] = [];
  const net: NetServer = createServer((s) => {
    sockets.push(s);
    conns.push(server.serveConnection(s));
  });
  await new Promise<void>((r) => net.listen(path, r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => net.close(r));
    await server.close({ graceful: false });
    cleanup();
  });
  return { path, sockets, conns };
}

describe("backpressure", () => {
  it("stops reading from a peer that does not read its responses", async () => {
    const { path, sockets, conns } = await inspectableServer();
    const peer = await RawPeer.open(path);
    cleanups.push(() => peer.close());
    peer.socket.pause();
    const requests: Uint8Array[] = [];
    const N = 2000;
    for (let i = 0; i < N; i++) {
      const body = encodeRequest({
        service: "ttrpctest.v1.Interop",
        method: "Unary",
        payload: toBinary(CallSchema, create(CallSchema, { replyBytes: 256 * 1024 })),
        timeoutNano: 0n,
        metadata: [],
      });
      requests.push(encodeFrame(2 * i + 1, MessageType.Request, 0, body));
    }
    peer.write(Buffer.concat(requests));
    await sleep(500);
    const queued = sockets[0]!.writableLength;
    // 2000 x 256 KiB = 500 MiB if every request had been served; far less may be queued.
    expect(queued).toBeLessThan(64 * MiB);
    expect(conns[0]!.activeCalls).toBeLessThan(200);
    // Once the peer reads, every call is answered.
    peer.socket.resume();
    await peer.until((f) => f.length === N, 60_000);
    expect(new Set(peer.frames.map((f) => f.header.streamId)).size).toBe(N);
  });

  it("a client-streaming producer waits for a server that does not consume", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    pair = await startPair({
      register: (s) =>
        s.register(Interop, {
          async clientStream(reqs) {
            await gate;
            let n = 0;
            for await (const _ of reqs) n++;
            return { receivedCount: n };
          },
        }),
    });
    let produced = 0;
    const total = 2000;
    async function* producer() {
      for (let i = 0; i < total; i++) {
        produced++;
        yield { payload: new Uint8Array(64 * 1024) };
      }
    }
    const result = pair.client.service(Interop).clientStream(producer());
    await sleep(500);
    // 2000 x 64 KiB = 125 MiB; the producer must be held back to a small multiple of the queue size.
    expect(produced).toBeLessThan(400);
    release();
    expect((await result).receivedCount).toBe(total);
  });

  it("a server-streaming handler is held back by a client that does not iterate", async () => {
    let produced = 0;
    pair = await startPair({
      register: (s) =>
        s.register(Interop, {
          async *serverStream(req) {
            for (let i = 0; i < req.repeat; i++) {
              produced++;
              yield { index: i, payload: new Uint8Array(64 * 1024) };
            }
          },
        }),
      client: { streamHighWater: 16 },
    });
    const total = 2000;
    const it = pair.client.service(Interop).serverStream({ repeat: total })[Symbol.asyncIterator]();
    await it.next();
    await sleep(500);
    expect(produced).toBeLessThan(400);
    let n = 1;
    while (!(await it.next()).done) n++;
    expect(n).toBe(total);
  });

  it("a half-open peer that stalls mid-frame holds at most one frame", async () => {
    const { path, conns } = await inspectableServer();
    const peer = await RawPeer.open(path);
    cleanups.push(() => peer.close());
    const body = encodeRequest({
      service: "ttrpctest.v1.Interop",
      method: "Unary",
      payload: new Uint8Array(3 * MiB),
      timeoutNano: 0n,
      metadata: [],
    });
    const frame = encodeFrame(1, MessageType.Request, 0, body);
    peer.write(frame.subarray(0, frame.length - 1));
    await sleep(200);
    expect(conns[0]!.activeCalls).toBe(0);
    // The connection is otherwise healthy: the missing byte completes the call.
    peer.write(frame.subarray(frame.length - 1));
    await peer.until((f) => f.length === 1);
  });

  it("many connections that come and go leave nothing behind", async () => {
    const { path, conns } = await inspectableServer();
    for (let i = 0; i < 50; i++) {
      const c = await Client.connect(path);
      const p = c.service(Interop).unary({ sleepMs: 10_000 });
      await sleep(2);
      c.close();
      await expect(p).rejects.toMatchObject({ code: 14 });
    }
    await sleep(50);
    expect(conns.every((c) => c.activeCalls === 0)).toBe(true);
  });
});
