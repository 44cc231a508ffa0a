import { createConnection, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A client for QEMU's machine protocol (QMP) on a unix socket: newline-delimited JSON, a greeting,
 * `qmp_capabilities`, then commands answered in order plus asynchronous events. Every call has a
 * deadline, because the point of talking to QEMU is to notice when it stops answering.
 */
export interface QmpEvent {
  readonly event: string;
  readonly data?: Record<string, unknown>;
  readonly timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = "QmpError";
  }
}

export class QmpTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`QMP ${command}: QEMU did not answer within ${timeoutMs} ms`);
    this.name = "QmpTimeoutError";
  }
}

export class QmpClosedError extends Error {
  constructor(detail: string) {
    super(`QMP connection closed: ${detail}`);
    this.name = "QmpClosedError";
  }
}

/** The states `query-status` reports (QEMU's RunState). */
export interface QmpStatus {
  readonly running: boolean;
  readonly status: string;
}

interface Pending {
  readonly command: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/** Bounds what a misbehaving peer can make us buffer. */
const MAX_LINE = 1 << 20;

export class QmpClient {
  readonly closed: Promise<void>;
  private buffer = "";
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly eventListeners: Array<(e: QmpEvent) => void> = [];
  private greeting: ((v: unknown) => void) | undefined;
  private isClosed = false;
  private resolveClosed!: () => void;

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise((r) => {
      this.resolveClosed = r;
    });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("error", () => {});
    socket.on("close", () => this.onClose("socket closed"));
  }

  /**
   * Connects, waiting up to `timeoutMs` for QEMU to create the socket, and negotiates
   * capabilities. `abort` ends the wait early (e.g. when QEMU exited).
   */
  static async connect(path: string, opts: { timeoutMs: number; abort?: AbortSignal }): Promise<QmpClient> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      opts.abort?.throwIfAborted();
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection({ path });
          s.once("connect", () => {
            s.off("error", reject);
            resolve(s);
          });
          s.once("error", reject);
        });
        const client = new QmpClient(socket);
        await client.handshake(Math.max(deadline - Date.now(), 1000));
        return client;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === "ENOENT" || code === "ECONNREFUSED") && Date.now() < deadline) {
          await sleep(5);
          continue;
        }
        if (code === "ENOENT" || code === "ECONNREFUSED") {
          throw new QmpTimeoutError(`connect ${path}`, opts.timeoutMs);
        }
        throw err;
      }
    }
  }

  private async handshake(timeoutMs: number): Promise<void> {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(new QmpTimeoutError("greeting", timeoutMs));
      }, timeoutMs);
      this.greeting = (v) => {
        clearTimeout(timer);
        resolve(v);
      };
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new QmpClosedError("before the greeting"));
      });
    });
    await this.execute("qmp_capabilities", undefined, timeoutMs);
  }

  onEvent(listener: (e: QmpEvent) => void): void {
    this.eventListeners.push(listener);
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<T> {
    if (this.isClosed) return Promise.reject(new QmpClosedError(`cannot run ${command}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpTimeoutError(command, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args && { arguments: args }), id })}\n`);
    });
  }

  async queryStatus(timeoutMs?: number): Promise<QmpStatus> {
    const r = await this.execute<{ running: boolean; status: string }>("query-status", undefined, timeoutMs);
    return { running: r.running, status: r.status };
  }

  close(): void {
    this.socket.destroy();
    this.onClose("closed by us");
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
    if (this.buffer.length > MAX_LINE) {
      this.socket.destroy();
      this.onClose(`QMP message longer than ${MAX_LINE} bytes`);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // QEMU only sends JSON; anything else is noise we cannot act on
    }
    if ("QMP" in msg) {
      this.greeting?.(msg.QMP);
      this.greeting = undefined;
      return;
    }
    if (typeof msg.event === "string") {
      for (const l of this.eventListeners) l(msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === "number" ? msg.id : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ("error" in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      p.reject(new QmpError(p.command, e.class ?? "GenericError", e.desc ?? "unknown error"));
    } else {
      p.resolve(msg.return);
    }
  }

  private onClose(detail: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new QmpClosedError(`${detail} while waiting for ${p.command}`));
      this.pending.delete(id);
    }
    this.resolveClosed();
  }
}
