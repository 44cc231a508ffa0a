/**
 * internal/ttrpc under Bun, the guest runtime: a Bun client against a Node server, a Node client
 * against a Bun server, and Bun against Bun, covering every call kind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { Client } from "../../internal/ttrpc/client.ts";
import { tempSocketPath } from "../../internal/ttrpc/testdata/harness.ts";
import { Interop } from "../../internal/ttrpc/testdata/interop-service.ts";
import { setupMissing, skipReason } from "../fixtures/skip.ts";
import { startTsServer } from "./peers.ts";

const bun = join(process.cwd(), "node_modules", ".bin", "bun");
const peer = join(process.cwd(), "test", "ttrpc", "bun-peer.ts");
const haveBun = !skipReason(
  import.meta.url,
  setupMissing(existsSync(bun) ? undefined : `${bun} missing (npm install)`),
);

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(bun, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function bunServer(path: string): Promise<ChildProcess> {
  const child = spawn(bun, [peer, "serve", path], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (l) =>
      l === "READY" ? resolve() : reject(new Error(l)),
    );
    child.once("exit", (c) => reject(new Error(`bun server exited ${c}`)));
  });
  return child;
}

const expected = {
  unary: [1, 2, 3],
  metadata: ["v"],
  streamed: [65536, 65536, 65536, 65536, 65536],
  counted: [2, 30],
  bidi: [0, 1, 2],
  errorCode: 5,
  deadlineCode: 4,
  big: 4 * 1024 * 1024 - 64,
};

describe.skipIf(!haveBun)("ttrpc under bun", () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill("SIGTERM");
  });

  it("bun client -> node server", async () => {
    const server = await startTsServer();
    try {
      const r = await run([peer, "client", server.path]);
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout)).toEqual(expected);
    } finally {
      await server.close();
    }
  });

  it("node client -> bun server", async () => {
    const { path, cleanup } = tempSocketPath();
    children.push(await bunServer(path));
    const c = await Client.connect(path);
    const api = c.service(Interop);
    expect((await api.unary({ payload: new Uint8Array([9]) })).payload[0]).toBe(9);
    const sizes: number[] = [];
    for await (const r of api.serverStream({ repeat: 3, replyBytes: 1000 })) sizes.push(r.payload.byteLength);
    expect(sizes).toEqual([1000, 1000, 1000]);
    await expect(api.unary({ throwMessage: "x" })).rejects.toMatchObject({ code: 13, message: "x" });
    await c.close();
    cleanup();
  });

  it("bun client -> bun server", async () => {
    const { path, cleanup } = tempSocketPath();
    children.push(await bunServer(path));
    const r = await run([peer, "client", path]);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual(expected);
    cleanup();
  });
});
