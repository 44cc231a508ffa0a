/**
 * The two ends of the interop matrix, each in a TS and a Go flavour:
 *   - servers: our Server in this process, or `gopeer serve` (containerd/ttrpc) in a child process;
 *   - drivers: clients that run one scenario command and report replies + status the same way,
 *     our Client in-process or `gopeer client` speaking JSON lines.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { create, fromJson, type JsonValue, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { Client } from "../../internal/ttrpc/client.ts";
import { TtrpcError } from "../../internal/ttrpc/errors.ts";
import { Server } from "../../internal/ttrpc/server.ts";
import {
  CallSchema,
  type Reply,
  ReplySchema,
} from "../../internal/ttrpc/testdata/gen/ttrpctest/v1/interop_pb.ts";
import { Interop, interopImpl } from "../../internal/ttrpc/testdata/interop-service.ts";
import { listenUnix } from "../../internal/ttrpc/unix-listener.ts";

export type Kind = "unary" | "server_stream" | "client_stream" | "bidi";
export type CallInit = MessageInitShape<typeof CallSchema>;

export interface Command {
  kind: Kind;
  calls: CallInit[];
  timeoutMs?: number;
  cancelAfterMs?: number;
  metadata?: Record<string, string[]>;
}

export interface Outcome {
  replies: Reply[];
  code: number;
  message: string;
  details: { typeUrl: string; value: Uint8Array }[];
  elapsedMs: number;
}

export interface Driver {
  readonly name: string;
  run(cmd: Command): Promise<Outcome>;
  close(): Promise<void>;
}

export interface PeerServer {
  readonly name: string;
  readonly path: string;
  /** Why the server process died on its own (stderr), if it did. */
  crashed(): string | undefined;
  close(): Promise<void>;
}

function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "ttrpc-interop-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startTsServer(): Promise<PeerServer> {
  const { dir, cleanup } = tempDir();
  const path = join(dir, "ts.sock");
  const server = new Server().register(Interop, interopImpl);
  await listenUnix(server, path);
  return {
    name: "ts",
    path,
    crashed: () => undefined,
    async close() {
      await server.close({ graceful: false });
      cleanup();
    },
  };
}

function waitExit(child: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
}

export async function startGoServer(binary: string): Promise<PeerServer> {
  const { dir, cleanup } = tempDir();
  const path = join(dir, "go.sock");
  const child = spawn(binary, ["serve", path], { stdio: "pipe" });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (l) => (l === "READY" ? resolve() : reject(new Error(`gopeer serve said ${l}`))));
    child.once("exit", (code) => reject(new Error(`gopeer serve exited ${code}: ${stderr}`)));
  });
  let stopping = false;
  return {
    name: "go",
    path,
    crashed: () => (!stopping && child.exitCode !== null ? `exit ${child.exitCode}: ${stderr}` : undefined),
    async close() {
      stopping = true;
      child.kill("SIGTERM");
      await waitExit(child);
      cleanup();
    },
  };
}

export async function tsDriver(path: string): Promise<Driver> {
  const client = await Client.connect(path);
  const api = client.service(Interop);
  return {
    name: "ts",
    async run(cmd) {
      const out: Outcome = { replies: [], code: 0, message: "", details: [], elapsedMs: 0 };
      const ac = new AbortController();
      const timer = cmd.cancelAfterMs ? setTimeout(() => ac.abort(), cmd.cancelAfterMs) : undefined;
      const opts = {
        ...(cmd.timeoutMs ? { timeoutMs: cmd.timeoutMs } : {}),
        ...(cmd.metadata ? { metadata: cmd.metadata } : {}),
        signal: ac.signal,
      };
      async function* requests() {
        for (const c of cmd.calls) yield c;
      }
      const started = performance.now();
      try {
        switch (cmd.kind) {
          case "unary":
            out.replies.push(await api.unary(cmd.calls[0] ?? {}, opts));
            break;
          case "server_stream":
            for await (const r of api.serverStream(cmd.calls[0] ?? {}, opts)) out.replies.push(r);
            break;
          case "client_stream":
            out.replies.push(await api.clientStream(requests(), opts));
            break;
          case "bidi":
            for await (const r of api.bidi(requests(), opts)) out.replies.push(r);
            break;
        }
      } catch (err) {
        if (!(err instanceof TtrpcError)) throw err;
        out.code = err.code;
        out.message = err.message;
        out.details = err.details.map((d) => ({ typeUrl: d.typeUrl, value: d.value }));
      } finally {
        clearTimeout(timer);
      }
      out.elapsedMs = performance.now() - started;
      return out;
    },
    close: () => client.close(),
  };
}

interface GoResult {
  id: number;
  replies: JsonValue[];
  code: number;
  message: string;
  details: { type_url: string; value: string | null }[];
  elapsed_ms: number;
}

export async function goDriver(binary: string, path: string): Promise<Driver> {
  const child = spawn(binary, ["client", path], { stdio: "pipe" });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const waiting = new Map<number, (r: GoResult) => void>();
  let exited = false;
  child.once("exit", () => {
    exited = true;
    for (const w of waiting.values()) {
      w({
        id: 0,
        replies: [],
        code: -1,
        message: `gopeer client exited: ${stderr}`,
        details: [],
        elapsed_ms: 0,
      });
    }
    waiting.clear();
  });
  createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
    const r = JSON.parse(line) as GoResult;
    waiting.get(r.id)?.(r);
    waiting.delete(r.id);
  });
  let nextId = 1;
  return {
    name: "go",
    run(cmd) {
      if (exited) return Promise.reject(new Error(`gopeer client is gone: ${stderr}`));
      const id = nextId++;
      const line = JSON.stringify({
        id,
        kind: cmd.kind,
        calls: cmd.calls.map((c) => toJson(CallSchema, create(CallSchema, c))),
        timeout_ms: cmd.timeoutMs ?? 0,
        cancel_after_ms: cmd.cancelAfterMs ?? 0,
        metadata: cmd.metadata ?? {},
      });
      return new Promise((resolve) => {
        waiting.set(id, (r) =>
          resolve({
            replies: r.replies.map((j) => fromJson(ReplySchema, j)),
            code: r.code,
            message: r.message,
            details: r.details.map((d) => ({
              typeUrl: d.type_url,
              value: d.value ? Buffer.from(d.value, "base64") : new Uint8Array(0),
            })),
            elapsedMs: r.elapsed_ms,
          }),
        );
        child.stdin.write(`${line}\n`);
      });
    },
    async close() {
      child.stdin.end();
      await waitExit(child);
    },
  };
}
