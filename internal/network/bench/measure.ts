import { connect, type Socket } from "node:net";

/**
 * Host-side TCP measurements against a server on the pod network: bulk throughput into a sink
 * that answers with the byte count it saw (so a short transfer cannot pass as a fast one) and
 * request/response round trips of one byte against an echo server.
 */
export interface Throughput {
  readonly bytes: number;
  readonly seconds: number;
  readonly mibPerSecond: number;
}

export interface RoundTrips {
  readonly count: number;
  readonly medianUs: number;
  readonly p99Us: number;
  readonly minUs: number;
}

function open(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.setNoDelay(true);
    const t = setTimeout(() => s.destroy(new Error(`connecting to ${host}:${port} timed out`)), timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

export async function measureThroughput(
  host: string,
  port: number,
  bytes: number,
  timeoutMs = 120_000,
): Promise<Throughput> {
  const s = await open(host, port, 10_000);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const started = process.hrtime.bigint();
  const reply = new Promise<string>((resolve, reject) => {
    let text = "";
    const t = setTimeout(
      () => s.destroy(new Error(`no byte count from ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    s.on("data", (d) => {
      text += d.toString();
    });
    s.on("end", () => {
      clearTimeout(t);
      resolve(text.trim());
    });
    s.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(chunk.length, bytes - sent);
    sent += n;
    if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
      await new Promise((r) => s.once("drain", r));
  }
  s.end();
  const counted = Number.parseInt(await reply, 10);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (counted !== bytes)
    throw new Error(`sink at ${host}:${port} counted ${counted} bytes, ${bytes} were sent`);
  return { bytes, seconds, mibPerSecond: bytes / 1048576 / seconds };
}

export async function measureRoundTrips(host: string, port: number, count: number): Promise<RoundTrips> {
  const s = await open(host, port, 10_000);
  const samples: number[] = [];
  try {
    let pending: ((b: Buffer) => void) | undefined;
    s.on("data", (d) => pending?.(d));
    for (let i = 0; i < count + 10; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`echo from ${host}:${port} timed out`)), 10_000);
        pending = (b) => {
          clearTimeout(timer);
          resolve(b);
        };
        s.write("x");
      });
      // The first round trips warm up caches and TCP state.
      if (i >= 10) samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    s.destroy();
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
  return { count, medianUs: at(0.5), p99Us: at(0.99), minUs: samples[0] ?? Number.NaN };
}

/** A Node one-liner serving the sink on port and the echo on port+1, for namespaces without a VM. */
export function nodeServersScript(port: number): string {
  return [
    "const net=require('net');",
    `net.createServer(s=>{let n=0;s.on('data',d=>n+=d.length);s.on('end',()=>s.end(String(n)))}).listen(${port},'0.0.0.0');`,
    `net.createServer(s=>{s.setNoDelay(true);s.pipe(s)}).listen(${port + 1},'0.0.0.0',()=>console.log('ready'));`,
  ].join("");
}
