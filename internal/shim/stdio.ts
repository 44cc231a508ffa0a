import { type ChildProcess, spawn } from "node:child_process";
import { constants, createWriteStream, mkdirSync, openSync } from "node:fs";
import { Socket } from "node:net";
import { dirname } from "node:path";
import { type Duplex, pipeline, type Readable, type Writable } from "node:stream";
import type { Logger } from "../log/logger.ts";
import { CleanupStack } from "./cleanup.ts";
import { errorMessage, invalidArgument } from "./errors.ts";
import type { StdioPaths } from "./process.ts";
import type { VsockListener } from "./vmm.ts";

/** The vsock ports the guest dials for one process' stdio (0 = stream unused). */
export interface GuestStdio {
  readonly stdinPort: number;
  readonly stdoutPort: number;
  readonly stderrPort: number;
  readonly terminal: boolean;
}

export interface StdioAttachment {
  readonly guest: GuestStdio;
  /** Settles when stdout and stderr reached EOF from the guest and were flushed to containerd's side. */
  readonly drained: Promise<void>;
  /** Output bytes received from the guest so far (tells a slow stream from a stuck one). */
  readonly bytesReceived: () => number;
  /** CloseIO(stdin): forward what the client already wrote, then EOF. */
  closeStdin(): void;
  /** Tears every stream down (Delete, failed Create). */
  close(): Promise<void>;
}

export interface StdioRequest {
  readonly containerId: string;
  readonly execId: string;
  readonly namespace: string;
  readonly terminal: boolean;
  readonly paths: StdioPaths;
  readonly listenVsock: () => Promise<VsockListener>;
  readonly log: Logger;
}

/** How a containerd stdio string is to be served. */
export type StdioTarget =
  | { kind: "none" }
  | { kind: "fifo"; path: string }
  | { kind: "file"; path: string }
  | { kind: "binary"; path: string; args: string[] };

/**
 * containerd hands FIFO paths (from `ctr`/CRI), `file:///path` (log to a file) or
 * `binary:///path?arg=…` (a logging binary reading the streams on fds 3 and 4). Anything else is
 * refused by name.
 */
export function parseStdioTarget(raw: string): StdioTarget {
  if (raw === "") return { kind: "none" };
  if (!raw.includes("://")) {
    if (!raw.startsWith("/")) throw invalidArgument(`stdio path ${JSON.stringify(raw)} is not absolute`);
    return { kind: "fifo", path: raw };
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidArgument(`stdio URI ${JSON.stringify(raw)} does not parse`);
  }
  const path = decodeURIComponent(url.pathname);
  if (url.protocol === "fifo:") return { kind: "fifo", path };
  if (url.protocol === "file:") return { kind: "file", path };
  if (url.protocol === "binary:") {
    // containerd's NewBinaryCmd: each query key becomes an arg, followed by its value when non-empty.
    const args: string[] = [];
    for (const [k, v] of url.searchParams) {
      args.push(k);
      if (v !== "") args.push(v);
    }
    return { kind: "binary", path, args };
  }
  throw invalidArgument(
    `stdio URI scheme ${url.protocol.replace(/:$/, "")} is not supported (fifo, file, binary)`,
  );
}

/** Opens a FIFO for writing without blocking; if nobody reads yet, holds it read-write so data waits. */
function openFifoWriter(path: string): Socket {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENXIO") throw err;
    fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  }
  return new Socket({ fd, readable: false, writable: true });
}

/**
 * How long CloseIO waits for the client to close its end of the stdin FIFO (which it does right after
 * the call) before stdin is ended anyway — a client that keeps writing after CloseIO is cut off.
 */
export const CLOSE_STDIN_GRACE_MS = 1_000;

/**
 * Opens a FIFO for reading, non-blocking. A FIFO reads EOF once no writer is open; containerd's
 * clients (ctr, CRI) open their writer before Create — a writer still blocked in open() already
 * counts — so EOF means "the client closed stdin", exactly as with runc's shim.
 */
function openFifoReader(path: string): Socket {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}

interface BinaryLogger {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly child: ChildProcess;
}

/** containerd's binary logging protocol: stdout on fd 3, stderr on fd 4, fd 5 closed when ready. */
async function startBinaryLogger(
  target: Extract<StdioTarget, { kind: "binary" }>,
  req: StdioRequest,
): Promise<BinaryLogger> {
  const child = spawn(target.path, target.args, {
    stdio: ["ignore", "ignore", "ignore", "pipe", "pipe", "pipe"],
    env: { ...process.env, CONTAINER_ID: req.containerId, CONTAINER_NAMESPACE: req.namespace },
  });
  const ready = (child.stdio as unknown as Readable[])[5]!;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`logging binary ${target.path} not ready after 10s`)),
      10_000,
    );
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`logging binary ${target.path}: ${err.message}`));
    });
    ready.on("data", () => {});
    ready.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { stdout: child.stdio[3] as Writable, stderr: child.stdio[4] as Writable, child };
}

function openFileSink(path: string): Writable {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
  // A regular file: net.Socket cannot wrap it, a write stream on the fd can.
  return createWriteStream("", { fd, autoClose: true });
}

/** Pipes one guest output stream into a host sink; resolves when the guest's EOF reached the sink. */
function forwardOutput(
  listener: VsockListener,
  sink: Writable,
  name: string,
  log: Logger,
  counter: { bytes: number },
): Promise<void> {
  return listener.accept().then(
    (conn) =>
      new Promise<void>((resolve) => {
        log.debug("stdio stream connected", { stream: name, port: listener.port });
        let bytes = 0;
        conn.on("data", (d: Buffer) => {
          bytes += d.length;
          counter.bytes += d.length;
        });
        conn.once("end", () => log.debug("stdio stream EOF from the guest", { stream: name, bytes }));
        pipeline(conn, sink, (err) => {
          if (err) log.warn("stdio stream ended with an error", { stream: name, error: errorMessage(err) });
          log.debug("stdio stream drained", { stream: name, bytes });
          resolve();
        });
      }),
    (err) => {
      // The guest never connected (create failed, listener closed): nothing to drain.
      log.debug("stdio stream never connected", { stream: name, error: errorMessage(err) });
      sink.end();
    },
  );
}

export async function attachStdio(req: StdioRequest): Promise<StdioAttachment> {
  const cleanup = new CleanupStack();
  const streams: Array<Duplex | Writable | Readable> = [];
  try {
    const stdin = parseStdioTarget(req.paths.stdin);
    const stdout = parseStdioTarget(req.paths.stdout);
    // With a terminal the guest merges stderr into the pty: containerd gives no separate stream.
    const stderr = req.terminal ? ({ kind: "none" } as const) : parseStdioTarget(req.paths.stderr);
    if (stdin.kind === "binary" || stdin.kind === "file") {
      throw invalidArgument(`stdin cannot be a ${stdin.kind}:// URI`);
    }

    let binary: BinaryLogger | undefined;
    if (stdout.kind === "binary" || stderr.kind === "binary") {
      const target = (stdout.kind === "binary" ? stdout : stderr) as Extract<StdioTarget, { kind: "binary" }>;
      binary = await startBinaryLogger(target, req);
      const child = binary.child;
      cleanup.push("stop logging binary", () => {
        if (child.exitCode === null) child.kill("SIGTERM");
      });
    }

    const sinkFor = (t: StdioTarget, which: "stdout" | "stderr"): Writable | undefined => {
      switch (t.kind) {
        case "none":
          return undefined;
        case "fifo":
          return openFifoWriter(t.path);
        case "file":
          return openFileSink(t.path);
        case "binary":
          return binary![which];
      }
    };

    const drains: Promise<void>[] = [];
    const counter = { bytes: 0 };
    let stdoutPort = 0;
    let stderrPort = 0;
    let stdinPort = 0;
    let closeStdin = () => {};

    for (const [which, target] of [
      ["stdout", stdout],
      ["stderr", stderr],
    ] as const) {
      const sink = sinkFor(target, which);
      if (!sink) continue;
      streams.push(sink);
      const listener = await req.listenVsock();
      cleanup.push(`close ${which} listener`, () => listener.close());
      if (which === "stdout") stdoutPort = listener.port;
      else stderrPort = listener.port;
      drains.push(forwardOutput(listener, sink, which, req.log, counter));
    }

    if (stdin.kind === "fifo") {
      const source = openFifoReader(stdin.path);
      streams.push(source);
      const sourceEnded = new Promise<void>((resolve) => {
        source.once("end", resolve);
        source.once("close", resolve);
      });
      cleanup.push("close stdin fifo", () => {
        source.destroy();
      });
      const listener = await req.listenVsock();
      cleanup.push("close stdin listener", () => listener.close());
      stdinPort = listener.port;
      let conn: Duplex | undefined;
      let closing = false;
      // CloseIO: everything the client wrote is in the FIFO already; its writer closes right after
      // the call, which ends the copy below. Bound the wait, then end stdin regardless.
      closeStdin = () => {
        if (closing) return;
        closing = true;
        void Promise.race([
          sourceEnded,
          new Promise((r) => setTimeout(r, CLOSE_STDIN_GRACE_MS).unref()),
        ]).then(() => {
          source.unpipe();
          source.destroy();
          conn?.end();
        });
      };
      listener.accept().then(
        (c) => {
          conn = c;
          streams.push(c);
          // EOF on the FIFO must reach the guest as EOF. vhost-device-vsock does not forward a
          // half-close (SHUT_WR), only a close: once everything is flushed, close the socket — the
          // guest reads the remaining data, then EOF.
          c.on("error", (err) => req.log.debug("stdin stream error", { error: errorMessage(err) }));
          c.on("finish", () => c.destroy());
          source.pipe(c);
          if (closing && source.destroyed) c.end();
        },
        () => source.destroy(),
      );
    }

    const drained = Promise.all(drains).then(() => undefined);
    const teardown = cleanup.transfer();
    return {
      guest: { stdinPort, stdoutPort, stderrPort, terminal: req.terminal },
      drained,
      bytesReceived: () => counter.bytes,
      closeStdin: () => closeStdin(),
      close: async () => {
        await teardown.unwind(req.log);
        for (const s of streams) s.destroy();
      },
    };
  } catch (err) {
    await cleanup.unwind(req.log);
    for (const s of streams) s.destroy();
    throw err;
  }
}
