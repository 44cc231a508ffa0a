/** Test plumbing: a server and a client joined by a real unix socket in a fresh temp directory. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, type ClientOptions } from "../client.ts";
import { Server, type ServerOptions } from "../server.ts";
import { listenUnix } from "../unix-listener.ts";
import { Interop, interopImpl } from "./interop-service.ts";

export interface Pair {
  server: Server;
  client: Client;
  path: string;
  close(): Promise<void>;
}

export function tempSocketPath(): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "ttrpc-test-"));
  return { path: join(dir, "s.sock"), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startPair(
  opts: { server?: ServerOptions; client?: ClientOptions; register?: (s: Server) => void } = {},
): Promise<Pair> {
  const { path, cleanup } = tempSocketPath();
  const server = new Server(opts.server);
  if (opts.register) opts.register(server);
  else server.register(Interop, interopImpl);
  await listenUnix(server, path);
  const client = await Client.connect(path, opts.client);
  return {
    server,
    client,
    path,
    async close() {
      await client.close();
      await server.close({ graceful: false });
      cleanup();
    },
  };
}
