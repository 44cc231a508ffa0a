/**
 * `beetroot bench ttrpc [--json] [--unary N] [--stream-mib M] [--message-kib K]`
 *
 * Unary round-trip latency (p50/p99, sequential calls, 16-byte payload) and server-streaming
 * throughput (K KiB messages) over unix sockets for every client/server pairing of our
 * implementation and containerd's Go ttrpc. Client and server always run in separate processes,
 * as they do in production.
 *
 * Hidden mode `--serve <socket>` runs the TS server for the other pairings.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Client } from "../client.ts";
import { Server } from "../server.ts";
import { Interop, interopImpl } from "../testdata/interop-service.ts";
import { listenUnix } from "../unix-listener.ts";
import { prepareGoPeer } from "./go-peer.ts";

export interface PairResult {
  client: "ts" | "go";
  server: "ts" | "go";
  unaryP50Us: number;
  unaryP99Us: number;
  streamMBps: number;
}

interface Options {
  json: boolean;
  unary: number;
  streamMiB: number;
  messageKiB: number;
  serve?: string;
}

function parseArgs(args: string[]): Options | string {
  const o: Options = { json: false, unary: 5000, streamMiB: 256, messageKiB: 64 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = () => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    try {
      if (a === "--json") o.json = true;
      else if (a === "--unary") o.unary = num();
      else if (a === "--stream-mib") o.streamMiB = num();
      else if (a === "--message-kib") o.messageKiB = num();
      else if (a === "--serve") o.serve = args[++i];
      else return `unknown argument ${a}`;
    } catch (err) {
      return (err as Error).message;
    }
  }
  return o;
}

async function serveForever(path: string): Promise<number> {
  const server = new Server().register(Interop, interopImpl);
  await listenUnix(server, path);
  process.stdout.write("READY\n");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await server.close({ graceful: false });
  return 0;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.floor(p * (sorted.length - 1))] ?? Number.NaN;
}

/** The TS client side of a pairing, run in this process. */
async function tsClientBench(path: string, o: Options): Promise<Omit<PairResult, "client" | "server">> {
  const client = await Client.connect(path);
  try {
    const api = client.service(Interop);
    const req = { payload: new Uint8Array(16).map((_, i) => i) };
    // Enough calls for V8 to finish tiering up the hot path before sampling starts.
    const warm = Math.max(1000, Math.ceil(o.unary / 10));
    const samples: number[] = [];
    for (let i = 0; i < warm + o.unary; i++) {
      const t = process.hrtime.bigint();
      await api.unary(req);
      if (i >= warm) samples.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    samples.sort((a, b) => a - b);
    const messageBytes = o.messageKiB * 1024;
    const count = Math.ceil((o.streamMiB * 1024 * 1024) / messageBytes);
    const started = process.hrtime.bigint();
    let total = 0;
    for await (const r of api.serverStream({ repeat: count, replyBytes: messageBytes }))
      total += r.payload.byteLength;
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    return {
      unaryP50Us: percentile(samples, 0.5),
      unaryP99Us: percentile(samples, 0.99),
      streamMBps: total / secs / 1e6,
    };
  } finally {
    await client.close();
  }
}

function readyProcess(file: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (l) =>
      l === "READY" ? resolve(child) : reject(new Error(`${file}: unexpected "${l}"`)),
    );
    child.once("exit", (code) => reject(new Error(`${file} ${args.join(" ")} exited with ${code}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

function goClientBench(
  binary: string,
  path: string,
  o: Options,
): Promise<Omit<PairResult, "client" | "server">> {
  const messageBytes = o.messageKiB * 1024;
  const count = Math.ceil((o.streamMiB * 1024 * 1024) / messageBytes);
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ["bench", path, String(o.unary), String(count), String(messageBytes)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`gopeer bench exited with ${code}`));
      const r = JSON.parse(out) as Record<string, number>;
      resolve({ unaryP50Us: r.unary_p50_us!, unaryP99Us: r.unary_p99_us!, streamMBps: r.stream_mb_s! });
    });
  });
}

function table(results: PairResult[], o: Options): string {
  const rows = [
    ["client -> server", "unary p50 (µs)", "unary p99 (µs)", `stream MB/s (${o.messageKiB} KiB msgs)`],
    ...results.map((r) => [
      `${r.client} -> ${r.server}`,
      r.unaryP50Us.toFixed(1),
      r.unaryP99Us.toFixed(1),
      r.streamMBps.toFixed(0),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")).join("\n");
}

export interface Verdict {
  goGoP50Us: number;
  tsTsP50Us: number;
  latencyRatio: number;
  latencyTargetMet: boolean;
  goGoMBps: number;
  tsTsMBps: number;
  throughputRatio: number;
  throughputTargetMet: boolean;
}

/** Targets: our unary p50 within 1.5x of Go<->Go, our throughput at least 70% of Go<->Go. */
export function verdict(results: PairResult[]): Verdict | undefined {
  const gg = results.find((r) => r.client === "go" && r.server === "go");
  const tt = results.find((r) => r.client === "ts" && r.server === "ts");
  if (!gg || !tt) return undefined;
  const latencyRatio = tt.unaryP50Us / gg.unaryP50Us;
  const throughputRatio = tt.streamMBps / gg.streamMBps;
  return {
    goGoP50Us: gg.unaryP50Us,
    tsTsP50Us: tt.unaryP50Us,
    latencyRatio,
    latencyTargetMet: latencyRatio <= 1.5,
    goGoMBps: gg.streamMBps,
    tsTsMBps: tt.streamMBps,
    throughputRatio,
    throughputTargetMet: throughputRatio >= 0.7,
  };
}

export async function main(args: string[]): Promise<number> {
  const o = parseArgs(args);
  if (typeof o === "string") {
    process.stderr.write(`beetroot bench ttrpc: ${o}\n`);
    return 2;
  }
  if (o.serve !== undefined) return serveForever(o.serve);
  const log = (l: string) => {
    if (!o.json) process.stderr.write(`${l}\n`);
  };
  const go = await prepareGoPeer(log);
  if (!go.ok) log(`Go pairings skipped: missing ${go.missing}`);
  const dir = mkdtempSync(join(tmpdir(), "beetroot-bench-ttrpc-"));
  const children: ChildProcess[] = [];
  const results: PairResult[] = [];
  try {
    const tsPath = join(dir, "ts.sock");
    const script = process.argv[1];
    if (script === undefined) throw new Error("cannot find this program's script to start the TS server");
    // execArgv is passed on so `node --cpu-prof dist/beetroot.mjs bench ttrpc` profiles both processes.
    children.push(
      await readyProcess(process.execPath, [
        ...process.execArgv,
        script,
        "bench",
        "ttrpc",
        "--serve",
        tsPath,
      ]),
    );
    let goPath: string | undefined;
    if (go.ok) {
      goPath = join(dir, "go.sock");
      children.push(await readyProcess(go.binary, ["serve", goPath]));
    }
    log("measuring ts -> ts");
    results.push({ client: "ts", server: "ts", ...(await tsClientBench(tsPath, o)) });
    if (go.ok && goPath !== undefined) {
      log("measuring ts -> go");
      results.push({ client: "ts", server: "go", ...(await tsClientBench(goPath, o)) });
      log("measuring go -> ts");
      results.push({ client: "go", server: "ts", ...(await goClientBench(go.binary, tsPath, o)) });
      log("measuring go -> go");
      results.push({ client: "go", server: "go", ...(await goClientBench(go.binary, goPath, o)) });
    }
  } finally {
    await Promise.all(children.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
  const v = verdict(results);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ options: { ...o, serve: undefined }, results, targets: v ?? null }, null, 2)}\n`,
    );
    return 0;
  }
  process.stdout.write(`${table(results, o)}\n`);
  if (v) {
    process.stdout.write(
      `\nunary p50: ts->ts ${v.tsTsP50Us.toFixed(1)} µs = ${v.latencyRatio.toFixed(2)}x go->go ` +
        `(target <= 1.5x: ${v.latencyTargetMet ? "met" : "MISSED"})\n` +
        `throughput: ts->ts ${v.tsTsMBps.toFixed(0)} MB/s = ${(v.throughputRatio * 100).toFixed(0)}% of go->go ` +
        `(target >= 70%: ${v.throughputTargetMet ? "met" : "MISSED"})\n`,
    );
  }
  return 0;
}
