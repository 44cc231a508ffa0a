import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, constants, createWriteStream, mkdirSync, openSync } from "node:fs";
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
 * Opens a FIFO for reading. A FIFO reads EOF whenever no writer is open, including before the
 * client opened its end; a keep-alive writer of our own holds EOF back until CloseIO says stdin is
 * finished — then EOF arrives once the client's writer is closed too, after everything it wrote.
 */
function openFifoReader(path: string): { stream: Socket; release: () => void } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  let keep: number | undefined = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return {
    stream: new Socket({ fd, readable: true, writable: false }),
    release: () => {
      if (keep === undefined) return;
      closeSync(keep);
      keep = undefined;
    },
  };
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
function forwardOutput(listener: VsockListener, sink: Writable, name: string, log: Logger): Promise<void> {
  return listener.accept().then(
    (conn) =>
      new Promise<void>((resolve) => {
        pipeline(conn, sink, (err) => {
          if (err) log.warn("stdio stream ended with an error", { stream: name, error: errorMessage(err) });
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
      drains.push(forwardOutput(listener, sink, which, req.log));
    }

    if (stdin.kind === "fifo") {
      const source = openFifoReader(stdin.path);
      streams.push(source.stream);
      cleanup.push("close stdin fifo", () => {
        source.release();
        source.stream.destroy();
      });
      const listener = await req.listenVsock();
      cleanup.push("close stdin listener", () => listener.close());
      stdinPort = listener.port;
      closeStdin = source.release;
      listener.accept().then(
        (conn) => {
          streams.push(conn);
          // EOF on the FIFO (after CloseIO) half-closes the vsock stream: the guest sees stdin EOF.
          pipeline(source.stream, conn, (err) => {
            if (err) req.log.debug("stdin stream ended", { error: errorMessage(err) });
          });
        },
        () => source.stream.destroy(),
      );
    }

    const drained = Promise.all(drains).then(() => undefined);
    const teardown = cleanup.transfer();
    return {
      guest: { stdinPort, stdoutPort, stderrPort, terminal: req.terminal },
      drained,
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
