/**
 * A container process's stdio. The host listens on one vsock port per stream and passes the ports;
 * the guest dials them before the process starts. The process itself gets real pipes (not the
 * sockets: programs reopen /dev/stdout, which fails on a socket), and vminitd copies between pipes
 * and sockets. stdout/stderr sockets are closed only once the pipe reached EOF — every writer,
 * including children the process left behind, closed it — so the host's EOF means "drained".
 *
 * With a terminal, crun hands over the pty master through a console socket; its output goes to
 * the stdout stream and the stdin stream feeds it.
 *
 * Output (pipe or pty master → host) is copied by the native pump (guest/native: splice(2) on a
 * thread of its own per stream; a Bun copy loop held the guest's only vCPU at ~25 MB/s), so the
 * stdout/stderr sockets stay bare fds Bun never reads or writes. Stdin (host → process) is a
 * net.Socket piped into the pipe or pty master. Bun-only: pipes and sockets come from libc.
 */
import { closeSync, createWriteStream, openSync, type WriteStream } from "node:fs";
import type { Duplex } from "node:stream";
import { type PumpResult, pump } from "../../native/vminitd-sys.ts";
import { errorMessage, type Logger } from "../log.ts";
import { errnoName } from "../sys/errno.ts";
import { pipe, setWindowSize } from "../sys/libc.ts";
import { adoptSocket } from "../sys/vsock.ts";

export interface StdioPorts {
  readonly stdinPort: number;
  readonly stdoutPort: number;
  readonly stderrPort: number;
  readonly terminal: boolean;
}

export type ChildStdio = number | "ignore";

/** Connects to a host stdio port: a connected, blocking stream socket fd, owned by the caller. */
export type Dial = (port: number) => number | Promise<number>;

const EIO = 5;

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * One output stream: the native pump copies `source` into `sink` until EOF, then both are closed —
 * the socket's close is the host's EOF. vhost-device-vsock (0.3.0, measured) does not pass a
 * half-close (SHUT_WR) on to the host's unix socket, so there is none; the close is queued behind
 * every byte the pump handed to the kernel.
 */
class OutputPump {
  readonly done: Promise<void>;
  private cancelWrite: number | undefined;

  constructor(source: number, sink: number, closeSource: boolean, log: Logger, what: string) {
    const [cancelRead, cancelWrite] = pipe();
    this.cancelWrite = cancelWrite;
    const t0 = performance.now();
    this.done = pump(source, sink, cancelRead)
      .then(
        (r: PumpResult) => {
          log.debug("stdio stream drained", {
            stream: what,
            bytes: r.bytes,
            ms: Math.round(performance.now() - t0),
            spliced: r.spliced,
            // A pty master reads EIO once the last slave fd is closed: that is its EOF.
            ...(r.readErrno && r.readErrno !== EIO ? { read_error: errnoName(r.readErrno) } : {}),
            ...(r.writeErrno ? { host_gone: errnoName(r.writeErrno) } : {}),
            ...(r.cancelled ? { cancelled: true } : {}),
          });
        },
        (err: unknown) => log.warn("stdio pump failed", { stream: what, error: errorMessage(err) }),
      )
      .finally(() => {
        this.cancel();
        closeQuietly(cancelRead);
        closeQuietly(sink);
        if (closeSource) closeQuietly(source);
      });
  }

  /** Ends the copy early (the pump wakes from any wait); `done` settles right after. */
  cancel(): void {
    if (this.cancelWrite === undefined) return;
    closeQuietly(this.cancelWrite);
    this.cancelWrite = undefined;
  }
}

/** Where output goes when the host asked for none: read and dropped, so the writer never blocks. */
function discardSink(): number {
  return openSync("/dev/null", "w");
}

export class ProcessIo {
  /** What crun gets as fds 0-2 (non-terminal); "ignore" is /dev/null. */
  readonly childStdio: [ChildStdio, ChildStdio, ChildStdio] = ["ignore", "ignore", "ignore"];
  /** Settles when stdout and stderr are copied to the host and their sockets closed. */
  readonly drained: Promise<void>;
  private resolveDrained!: () => void;
  private childEnds: number[] = [];
  private pumps: OutputPump[] = [];
  private stdinSink: WriteStream | undefined;
  private console: number | undefined;
  private closed = false;

  private constructor(
    private readonly ports: StdioPorts,
    private readonly stdin: Duplex | undefined,
    /** Output sockets no pump owns yet (a terminal's, until the pty master arrives). */
    private readonly outputs: { stdout?: number; stderr?: number },
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
    const fds: { stdin?: number; stdout?: number; stderr?: number } = {};
    try {
      if (ports.stdinPort) fds.stdin = await dial(ports.stdinPort);
      if (ports.stdoutPort) fds.stdout = await dial(ports.stdoutPort);
      if (ports.stderrPort && !ports.terminal) fds.stderr = await dial(ports.stderrPort);
    } catch (err) {
      for (const fd of Object.values(fds)) closeQuietly(fd);
      throw err;
    }
    let stdin: Duplex | undefined;
    if (fds.stdin !== undefined) {
      stdin = adoptSocket(fds.stdin);
      stdin.on("error", (err) => log.debug("stdin socket error", { error: errorMessage(err) }));
    }
    const io = new ProcessIo(ports, stdin, { stdout: fds.stdout, stderr: fds.stderr }, log);
    if (!ports.terminal) io.makePipes();
    return io;
  }

  private startPump(source: number, sink: number, closeSource: boolean, what: string): void {
    this.pumps.push(new OutputPump(source, sink, closeSource, this.log, what));
  }

  private settleDrainedWithPumps(): void {
    void Promise.all(this.pumps.map((p) => p.done)).then(() => this.resolveDrained());
  }

  private makePipes(): void {
    if (this.stdin) {
      const [r, w] = pipe();
      this.childStdio[0] = r;
      this.childEnds.push(r);
      this.feedStdin(this.stdin, w);
    }
    for (const [i, name] of [
      [1, "stdout"],
      [2, "stderr"],
    ] as const) {
      const sock = this.outputs[name];
      if (sock === undefined) continue;
      delete this.outputs[name];
      const [r, w] = pipe();
      this.childStdio[i] = w;
      this.childEnds.push(w);
      this.startPump(r, sock, true, name);
    }
    this.settleDrainedWithPumps();
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

  /**
   * Terminal: the pty master crun passed through the console socket carries both directions. Its
   * output is pumped like a pipe (read/write: splice needs a pipe on one side) and the master is
   * closed once it read EIO, i.e. the last slave closed.
   */
  attachConsole(master: number): void {
    if (this.closed) {
      closeQuietly(master);
      return;
    }
    this.console = master;
    const sock = this.outputs.stdout ?? discardSink();
    delete this.outputs.stdout;
    this.startPump(master, sock, true, "console");
    this.settleDrainedWithPumps();
    if (this.stdin) {
      const sink = createWriteStream("", { fd: master, autoClose: false });
      sink.on("error", (err) => this.log.debug("console write error", { error: errorMessage(err) }));
      this.stdinSink = sink;
      this.stdin.pipe(sink);
    }
  }

  resize(width: number, height: number): void {
    if (this.console === undefined) throw new Error("the process has no terminal");
    setWindowSize(this.console, height, width);
  }

  /** CloseIO(stdin): what the host already sent is written, then the process reads EOF. */
  closeStdin(): void {
    const sock = this.stdin;
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
    for (const p of this.pumps) p.cancel();
    // The pumps close their sockets and read ends (the pty master included) as they settle.
    await Promise.all(this.pumps.map((p) => p.done));
    for (const fd of Object.values(this.outputs)) closeQuietly(fd);
    this.stdin?.destroy();
    this.resolveDrained();
  }
}
