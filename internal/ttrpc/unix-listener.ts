import { chmod, lstat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server as NetServer, type Socket } from "node:net";
import { errorText } from "./logger.ts";
import type { Server } from "./server.ts";

/**
 * Serves `server` on a unix socket path. A stale socket file left by a dead process is replaced;
 * one that still accepts connections is an error (EADDRINUSE). Kept out of server.ts so a server
 * that only serves connections it dialled itself (vminitd) never loads node:net.
 */
export async function listenUnix(server: Server, path: string, opts: { mode?: number } = {}): Promise<void> {
  const srv = createServer((socket: Socket) => {
    server.serveConnection(socket);
  });
  srv.on("error", (err) => server.logger.error("ttrpc: listener error", { path, error: errorText(err) }));
  try {
    await listenOn(srv, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || !(await isStaleSocket(path))) throw err;
    await unlink(path);
    await listenOn(srv, path);
  }
  try {
    if (opts.mode !== undefined) await chmod(path, opts.mode);
    server.trackListener(srv);
  } catch (err) {
    srv.close();
    throw err;
  }
}

function listenOn(srv: NetServer, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    srv.once("error", onError);
    srv.listen(path, () => {
      srv.off("error", onError);
      resolve();
    });
  });
}

async function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!(await lstat(path)).isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(false);
    });
    probe.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}
