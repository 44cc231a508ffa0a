/**
 * A container process's stdio. The host listens on one vsock port per stream and passes the ports;
 * the guest dials them before the process starts. The process itself gets real pipes (not the
 * sockets: programs reopen /dev/stdout, which fails on a socket), and vminitd copies between pipes
 * and sockets. stdout/stderr sockets are ended only once the pipe reached EOF — every writer,
 * including children the process left behind, closed it — so the host's EOF means "drained".
 *
 * With a terminal, crun hands over the pty master through a console socket; its output goes to
 * the stdout stream and the stdin stream feeds it.
 *
 * Bun-only: pipes come from libc, pipe read ends are read with Bun.file(fd).stream(), a pty master
 * with fs.createReadStream.
 */
import { closeSync, createReadStream, createWriteStream, type WriteStream } from "node:fs";
import type { Duplex } from "node:stream";
import { errorMessage, type Logger } from "../log.ts";
import { pipe, setWindowSize } from "../sys/libc.ts";

export interface StdioPorts {
  readonly stdinPort: number;
  readonly stdoutPort: number;
  readonly stderrPort: number;
  readonly terminal: boolean;
}

export type ChildStdio = number | "ignore";

export type Dial = (port: number) => Duplex | Promise<Duplex>;

interface BunReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(): Promise<void>;
}

/** A pipe's read end: Bun reads FIFOs without blocking a thread. */
function pipeReader(fd: number): BunReader {
  return (Bun as unknown as { file(fd: number): { stream(): { getReader(): BunReader } } })
    .file(fd)
    .stream()
    .getReader() as BunReader;
}

/**
 * A pty master: Bun.file(fd).stream() fails on it (ESPIPE, it preads); fs.createReadStream reads it
 * (measured), ending with EIO once the terminal's last slave fd is closed.
 */
function ttyReader(fd: number): BunReader {
  const rs = createReadStream("", { fd, autoClose: false });
  const it = rs[Symbol.asyncIterator]();
  return {
    read: async () => {
      const r = await it.next();
      return r.done ? { done: true } : { done: false, value: r.value as Uint8Array };
    },
    cancel: async () => {
      rs.destroy();
    },
  };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * Ends a stream socket so the host reads EOF. vhost-device-vsock (0.3.0, measured) does not pass a
 * half-close (SHUT_WR) on to the host's unix socket — the host would wait forever — so once the
 * data is handed to the kernel the socket is closed entirely; the close reaches the host as EOF.
 */
function finish(sock: Duplex): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve();
    };
    const timer = setTimeout(done, 5_000);
    sock.end(done);
  });
}

/** Copies a pipe (or pty) read end into a socket until EOF, then ends the socket. */
async function pump(
  fd: number,
  sock: Duplex | undefined,
  reader: BunReader,
  log: Logger,
  what: string,
): Promise<void> {
  let broken = sock === undefined;
  let bytes = 0;
  const t0 = performance.now();
  try {
    for (;;) {
      let r: { done: boolean; value?: Uint8Array };
      try {
        r = await reader.read();
      } catch (err) {
        // A pty master reads EIO once the last slave fd is closed: that is its EOF.
        log.debug("stdio read ended", { stream: what, error: errorMessage(err) });
        break;
      }
      if (r.done) break;
      bytes += r.value?.byteLength ?? 0;
      if (broken || !sock || !r.value) continue; // keep draining so the writer never blocks
      if (!sock.write(r.value)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            sock.off("drain", done);
            sock.off("close", done);
            resolve();
          };
          sock.on("drain", done);
          sock.on("close", done);
        });
        if (sock.destroyed) broken = true;
      }
    }
  } finally {
    closeQuietly(fd);
    if (sock && !sock.destroyed) await finish(sock);
    log.debug("stdio stream drained", {
      stream: what,
      bytes,
      ms: Math.round(performance.now() - t0),
      host_gone: broken,
    });
  }
}

export class ProcessIo {
  /** What crun gets as fds 0-2 (non-terminal); "ignore" is /dev/null. */
  readonly childStdio: [ChildStdio, ChildStdio, ChildStdio] = ["ignore", "ignore", "ignore"];
  /** Settles when stdout and stderr are copied to the host and their sockets ended. */
  readonly drained: Promise<void>;
  private resolveDrained!: () => void;
  private childEnds: number[] = [];
  private readers: BunReader[] = [];
  private stdinSink: WriteStream | undefined;
  private console: number | undefined;
  private closed = false;

  private constructor(
    private readonly ports: StdioPorts,
    private readonly sockets: { stdin?: Duplex; stdout?: Duplex; stderr?: Duplex },
    private readonly log: Logger,
  ) {
    this.drained = new Promise((resolve) => {
      this.resolveDrained = resolve;
    });
  }

  get terminal(): boolean {
    return this.ports.terminal;
  }

  /** Dials the host's stdio ports (those not 0) and makes the pipes for a non-terminal process. */
  static async open(ports: StdioPorts, dial: Dial, log: Logger): Promise<ProcessIo> {
    const sockets: { stdin?: Duplex; stdout?: Duplex; stderr?: Duplex } = {};
    try {
      if (ports.stdinPort) sockets.stdin = await dial(ports.stdinPort);
      if (ports.stdoutPort) sockets.stdout = await dial(ports.stdoutPort);
      if (ports.stderrPort && !ports.terminal) sockets.stderr = await dial(ports.stderrPort);
    } catch (err) {
      for (const s of Object.values(sockets)) s?.destroy();
      throw err;
    }
    for (const s of Object.values(sockets))
      s?.on("error", (err) => log.debug("stdio socket error", { error: errorMessage(err) }));
    const io = new ProcessIo(ports, sockets, log);
    if (!ports.terminal) io.makePipes();
    return io;
  }

  private makePipes(): void {
    const { stdin, stdout, stderr } = this.sockets;
    const drains: Promise<void>[] = [];
    if (stdin) {
      const [r, w] = pipe();
      this.childStdio[0] = r;
      this.childEnds.push(r);
      this.feedStdin(stdin, w);
    }
    for (const [i, sock, name] of [
      [1, stdout, "stdout"],
      [2, stderr, "stderr"],
    ] as const) {
      if (!sock) continue;
      const [r, w] = pipe();
      this.childStdio[i] = w;
      this.childEnds.push(w);
      const reader = pipeReader(r);
      this.readers.push(reader);
      drains.push(pump(r, sock, reader, this.log, name));
    }
    void Promise.all(drains).then(() => this.resolveDrained());
  }

  private feedStdin(sock: Duplex, fd: number): void {
    const sink = createWriteStream("", { fd, autoClose: true });
    sink.on("error", (err) => this.log.debug("stdin pipe error", { error: errorMessage(err) }));
    this.stdinSink = sink;
    sock.pipe(sink);
  }

  /** After the child (crun) started: our copies of its ends must go, or EOF never comes. */
  afterSpawn(): void {
    for (const fd of this.childEnds) closeQuietly(fd);
    this.childEnds = [];
  }

  /** Terminal: the pty master crun passed through the console socket carries both directions. */
  attachConsole(master: number): void {
    this.console = master;
    const reader = ttyReader(master);
    this.readers.push(reader);
    void pump(master, this.sockets.stdout, reader, this.log, "console").then(() => this.resolveDrained());
    if (this.sockets.stdin) {
      const sink = createWriteStream("", { fd: master, autoClose: false });
      sink.on("error", (err) => this.log.debug("console write error", { error: errorMessage(err) }));
      this.stdinSink = sink;
      this.sockets.stdin.pipe(sink);
    }
  }

  resize(width: number, height: number): void {
    if (this.console === undefined) throw new Error("the process has no terminal");
    setWindowSize(this.console, height, width);
  }

  /** CloseIO(stdin): what the host already sent is written, then the process reads EOF. */
  closeStdin(): void {
    const sock = this.sockets.stdin;
    if (sock) {
      sock.unpipe();
      sock.destroy();
    }
    if (this.console === undefined) this.stdinSink?.end();
  }

  /** Tears everything down (delete, failed create, a process whose pipes outlive it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.afterSpawn();
    for (const r of this.readers) await r.cancel().catch(() => {});
    for (const s of Object.values(this.sockets)) s?.destroy();
    // The pumps close their read ends (the pty master included) once their readers are cancelled.
    this.resolveDrained();
  }
}
