/**
 * Runs internal/ttrpc under Bun (the guest's runtime): `bun test/ttrpc/bun-peer.ts serve <socket>`
 * serves the Interop service and prints READY; `... client <socket>` exercises every call kind
 * against a server and prints one JSON summary line.
 */
import { Client } from "../../internal/ttrpc/client.ts";
import { TtrpcError } from "../../internal/ttrpc/errors.ts";
import { Server } from "../../internal/ttrpc/server.ts";
import { Interop, interopImpl } from "../../internal/ttrpc/testdata/interop-service.ts";
import { listenUnix } from "../../internal/ttrpc/unix-listener.ts";

async function* gen<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) yield x;
}

async function client(path: string): Promise<void> {
  const c = await Client.connect(path);
  const api = c.service(Interop);
  const unary = await api.unary(
    { payload: new Uint8Array([1, 2, 3]), metadataKey: "k" },
    { metadata: { k: "v" }, timeoutMs: 5000 },
  );
  const streamed: number[] = [];
  for await (const r of api.serverStream({ repeat: 5, replyBytes: 65536 }))
    streamed.push(r.payload.byteLength);
  const counted = await api.clientStream(
    gen([{ payload: new Uint8Array(10) }, { payload: new Uint8Array(20) }]),
  );
  const bidi: number[] = [];
  for await (const r of api.bidi(gen([{ repeat: 2 }, {}]))) bidi.push(r.index);
  let errorCode = -1;
  try {
    await api.unary({ failCode: 5, failMessage: "nf" });
  } catch (err) {
    if (err instanceof TtrpcError) errorCode = err.code;
  }
  let deadlineCode = -1;
  try {
    await api.unary({ sleepMs: 2000 }, { timeoutMs: 50 });
  } catch (err) {
    if (err instanceof TtrpcError) deadlineCode = err.code;
  }
  const big = await api.unary({ replyBytes: 4 * 1024 * 1024 - 64 });
  await c.close();
  console.log(
    JSON.stringify({
      unary: [...unary.payload],
      metadata: unary.metadataValues,
      streamed,
      counted: [counted.receivedCount, Number(counted.receivedBytes)],
      bidi,
      errorCode,
      deadlineCode,
      big: big.payload.byteLength,
    }),
  );
}

async function serve(path: string): Promise<void> {
  const server = new Server().register(Interop, interopImpl);
  await listenUnix(server, path);
  console.log("READY");
  await new Promise<void>((resolve) => process.once("SIGTERM", () => resolve()));
  await server.close({ graceful: false });
}

const [mode, path] = process.argv.slice(2);
if (path === undefined || (mode !== "serve" && mode !== "client")) {
  console.error("usage: bun-peer.ts serve|client <socket>");
  process.exit(2);
}
await (mode === "serve" ? serve(path) : client(path));
