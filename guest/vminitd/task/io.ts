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
 * stdout/stderr sockets stay bare fds Bun never reads or writes. Stdin (host → process) is pumped the
 * same way, from its socket into the pipe or pty master. Bun-only: pipes and sockets come from libc.
 */
import { closeSync, openSync } from "node:fs";
import { type PumpResult, pump } from "../../native/vminitd-sys.ts";
import { errorMessage, type Logger } from "../log.ts";
import { errnoName } from "../sys/errno.ts";
import { dupCloexec, pipe, setNonBlocking, setWindowSize } from "../sys/libc.ts";

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
 * One stream: the native pump copies `source` into `sink` until EOF, then closes both. For output,
 * the socket's close is the host's EOF; for stdin, the pipe's close is the process's. vhost-device-vsock (0.3.0, measured) does not pass a
 * half-close (SHUT_WR) on to the host's unix socket, so there is none; the close is queued behind
 * every byte the pump handed to the kernel.
 */
class StreamPump {
  readonly done: Promise<void>;
  private cancelWrite: number | undefined;

  constructor(source: number, sink: number, log: Logger, what: string) {
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
        closeQuietly(source);
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
  private pumps: StreamPump[] = [];
  private stdinPump: StreamPump | undefined;
  private console: number | undefined;
  private closed = false;

  private constructor(
    private readonly ports: StdioPorts,
    /** The stdin socket until a pump owns it. */
    private stdin: number | undefined,
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
    const io = new ProcessIo(ports, fds.stdin, { stdout: fds.stdout, stderr: fds.stderr }, log);
    if (!ports.terminal) io.makePipes();
    return io;
  }

  private startPump(source: number, sink: number, what: string): void {
    this.pumps.push(new StreamPump(source, sink, this.log, what));
  }

  /** Stdin into `sink` (the pump owns and closes both). */
  private feedStdin(sink: number): void {
    if (this.stdin === undefined) {
      closeQuietly(sink);
      return;
    }
    const source = this.stdin;
    this.stdin = undefined;
    // A blocking socket would keep the pump inside splice(2) (a socket without splice_read is read
    // with a plain blocking recv) where closing its cancel pipe cannot reach it: CloseIO and
    // delete would wait for the host to close stdin first.
    setNonBlocking(source);
    this.stdinPump = new StreamPump(source, sink, this.log, "stdin");
  }

  private settleDrainedWithPumps(): void {
    void Promise.all(this.pumps.map((p) => p.done)).then(() => this.resolveDrained());
  }

  private makePipes(): void {
    if (this.stdin !== undefined) {
      const [r, w] = pipe();
      this.childStdio[0] = r;
      this.childEnds.push(r);
      this.feedStdin(w);
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
      this.startPump(r, sock, name);
    }
    this.settleDrainedWithPumps();
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
    this.startPump(master, sock, "console");
    this.settleDrainedWithPumps();
    // Its own descriptor: the console pump closes the master when the terminal hangs up, and the
    // number must not be reused under a stdin pump still writing to it.
    if (this.stdin !== undefined) this.feedStdin(dupCloexec(master));
  }

  resize(width: number, height: number): void {
    if (this.console === undefined) throw new Error("the process has no terminal");
    setWindowSize(this.console, height, width);
  }

  /**
   * CloseIO(stdin): the process reads EOF now (a terminal's master stays open). The host normally
   * ends stdin by closing the stream, which lets the pump copy everything first; this cuts it short.
   */
  closeStdin(): void {
    if (this.stdin !== undefined) {
      closeQuietly(this.stdin);
      this.stdin = undefined;
    }
    this.stdinPump?.cancel();
  }

  /** Tears everything down (delete, failed create, a process whose pipes outlive it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.afterSpawn();
    this.closeStdin();
    for (const p of this.pumps) p.cancel();
    // The pumps close their sockets and read ends (the pty master included) as they settle.
    await Promise.all([...this.pumps, ...(this.stdinPump ? [this.stdinPump] : [])].map((p) => p.done));
    for (const fd of Object.values(this.outputs)) closeQuietly(fd);
    this.resolveDrained();
  }
}
