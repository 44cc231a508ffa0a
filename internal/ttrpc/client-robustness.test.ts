/** The client against a hostile or broken server: every call settles, nothing throws out. */
import { createServer, type Server as NetServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Client } from "./client.ts";
import { Code } from "./codes.ts";
import { TtrpcError } from "./errors.ts";
import { encodeFrame, encodeHeader, FrameDecoder, type FrameHeader, MessageType } from "./frame.ts";
import { tempSocketPath } from "./testdata/harness.ts";
import { Interop } from "./testdata/interop-service.ts";
import { prng } from "./testdata/prng.ts";

type Answer = (h: FrameHeader, s: Socket) => void;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeServer(answer: Answer): Promise<string> {
  const { path, cleanup } = tempSocketPath();
  const sockets: Socket[] = [];
  const srv: NetServer = createServer((s) => {
    sockets.push(s);
    s.on("error", () => {});
    const dec = new FrameDecoder();
    s.on("data", (c: Buffer) =>
      dec.push(c, (ev) => {
        if (ev.kind === "frame") answer(ev.header, s);
      }),
    );
  });
  await new Promise<void>((r) => srv.listen(path, r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => srv.close(r));
    cleanup();
  });
  return path;
}

async function outcome(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return Code.OK;
  } catch (err) {
    expect(err).toBeInstanceOf(TtrpcError);
    return (err as TtrpcError).code;
  }
}

describe("client against a misbehaving server", () => {
  it("maps each kind of bad answer to a precise failure of that call only", async () => {
    const path = await fakeServer((h, s) => {
      switch (h.streamId) {
        case 1: // undecodable Response envelope
          s.write(encodeFrame(1, MessageType.Response, 0, new Uint8Array([0x0a, 0x09])));
          break;
        case 3: // Data on a unary call
          s.write(encodeFrame(3, MessageType.Data, 0, new Uint8Array(0)));
          break;
        case 5: // oversized answer, really sent
          s.write(
            encodeHeader({ length: 4 * 1024 * 1024 + 1, streamId: 5, type: MessageType.Response, flags: 0 }),
          );
          s.write(new Uint8Array(4 * 1024 * 1024 + 1));
          break;
        case 7: // answers for streams nobody asked about, then a valid OK with garbage payload
          s.write(encodeFrame(99, MessageType.Response, 0, new Uint8Array(0)));
          s.write(encodeFrame(8, MessageType.Data, 0, new Uint8Array(0)));
          s.write(encodeFrame(7, MessageType.Response, 0, new Uint8Array([0x12, 0x02, 0x0a, 0x7f])));
          break;
        case 9: // unknown frame type, then nothing: the deadline decides
          s.write(encodeFrame(9, 42, 0, new Uint8Array(3)));
          break;
        case 11: // a Response without status: OK (containerd/ttrpc treats nil status as success)
          s.write(encodeFrame(11, MessageType.Response, 0, new Uint8Array(0)));
          break;
      }
    });
    const client = new Client(await connectSocket(path));
    cleanups.push(() => client.close());
    const api = client.service(Interop);
    const codes = await Promise.all([
      outcome(api.unary({})),
      outcome(api.unary({})),
      outcome(api.unary({})),
      outcome(api.unary({})),
      outcome(api.unary({}, { timeoutMs: 100 })),
      outcome(api.unary({})),
    ]);
    expect(codes).toEqual([
      Code.Internal,
      Code.Internal,
      Code.ResourceExhausted,
      Code.Internal,
      Code.DeadlineExceeded,
      Code.OK,
    ]);
  });

  it("survives seeded random garbage; every pending call fails with Unavailable when it hangs up", async () => {
    const r = prng(42);
    let answered = 0;
    const path = await fakeServer((h, s) => {
      answered++;
      const n = Math.floor(r() * 64);
      const junk = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
      if (r() < 0.5) s.write(encodeFrame(h.streamId, Math.floor(r() * 4), Math.floor(r() * 8), junk));
      else s.write(junk);
      if (answered === 200) s.destroy();
    });
    const client = new Client(await connectSocket(path));
    cleanups.push(() => client.close());
    const api = client.service(Interop);
    const calls: Promise<number>[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = i % 4;
      if (kind === 0) calls.push(outcome(api.unary({})));
      else if (kind === 1) calls.push(outcome(drain(api.serverStream({}))));
      else if (kind === 2) calls.push(outcome(api.clientStream(one())));
      else calls.push(outcome(drain(api.bidi(one()))));
    }
    const codes = await Promise.all(calls);
    expect(codes.every((c) => Number.isInteger(c))).toBe(true);
    expect(codes).toContain(Code.Unavailable);
    expect(await client.closed).toBeInstanceOf(Error);
  });
});

async function* one() {
  yield {};
}

async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it) {
    // keep reading
  }
}

function connectSocket(path: string): Promise<Socket> {
  return import("node:net").then(
    ({ connect }) =>
      new Promise<Socket>((resolve, reject) => {
        const s = connect({ path });
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      }),
  );
}
