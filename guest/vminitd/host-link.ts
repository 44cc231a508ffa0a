/**
 * The connection vminitd keeps to the host: dial back, serve TTRPC on it, and when it drops, dial
 * again for a bounded time. A guest that cannot reach its host for that long is an orphan nobody can
 * manage or stop, so the link then gives up and the caller powers the VM off.
 *
 * States: dialing → connected → (lost → dialing)* → closed | gave-up.
 */
import type { ByteStream } from "../../internal/ttrpc/byte-stream.ts";
import { type Clock, DialTimeoutError, dialWithRetry } from "./dial.ts";
import { errorMessage, type Logger } from "./log.ts";

export type LinkState = "idle" | "dialing" | "connected" | "closed" | "gave-up";

export interface ServedConnection {
  /** Resolves when the stream is gone, for whatever reason. */
  readonly closed: Promise<void>;
}

export interface HostLinkDeps {
  /** One connection attempt (throws when the host is not there). */
  dial(): ByteStream | Promise<ByteStream>;
  serve(stream: ByteStream): ServedConnection;
  /** Called once when the host stayed unreachable for the whole window; the VM should power off. */
  onGiveUp(reason: string): void;
  /** Called on every established connection, with its sequence number (1 = first). */
  onConnected?(n: number): void;
  readonly clock: Clock;
  readonly log: Logger;
}

export interface HostLinkOptions {
  /** Window for the first connection (the host may still be starting its listener). */
  readonly dialTimeoutMs: number;
  /** Window for re-establishing a lost connection. */
  readonly reconnectTimeoutMs: number;
}

export class HostLink {
  private stateValue: LinkState = "idle";
  private connections = 0;
  private current: ByteStream | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly deps: HostLinkDeps,
    private readonly opts: HostLinkOptions,
  ) {}

  get state(): LinkState {
    return this.stateValue;
  }

  get connectionCount(): number {
    return this.connections;
  }

  /** Starts the dial/serve loop; the returned promise settles when the link is closed or gave up. */
  start(): Promise<void> {
    if (this.loop) throw new Error("host link already started");
    this.loop = this.run();
    return this.loop;
  }

  /**
   * Stops reconnecting and closes the current connection once what was written has been handed to
   * the kernel (or the host closed, or `timeoutMs` passed); the host need not close its side for
   * the guest to go on powering off.
   */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.stateValue === "closed" || this.stateValue === "gave-up") return;
    this.stateValue = "closed";
    const stream = this.current;
    if (!stream || stream.destroyed) return;
    await new Promise<void>((resolve) => {
      // Once written data sits in the kernel's socket buffer it is on its way; the stream can go.
      const done = () => {
        clearTimeout(timer);
        stream.destroy();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      stream.once("close", done);
      stream.once("error", done);
      stream.end(done);
    });
  }

  private async run(): Promise<void> {
    const { log } = this.deps;
    let window = this.opts.dialTimeoutMs;
    while (this.stateValue !== "closed") {
      this.stateValue = "dialing";
      let stream: ByteStream;
      try {
        stream = await dialWithRetry(
          () => this.deps.dial(),
          { timeoutMs: window },
          this.deps.clock,
          log,
          () => this.isClosed(),
        );
      } catch (err) {
        if (this.isClosed()) return;
        this.stateValue = "gave-up";
        const reason =
          err instanceof DialTimeoutError ? err.message : `dialling the host failed: ${errorMessage(err)}`;
        log.error("giving up on the host", { reason });
        this.deps.onGiveUp(reason);
        return;
      }
      if (this.isClosed()) {
        stream.destroy();
        return;
      }
      this.current = stream;
      this.connections++;
      this.stateValue = "connected";
      this.deps.onConnected?.(this.connections);
      const served = this.deps.serve(stream);
      await served.closed;
      this.current = undefined;
      if (this.isClosed()) return;
      log.warn("connection to the host lost, dialling again", {
        connection: this.connections,
        window_ms: this.opts.reconnectTimeoutMs,
      });
      window = this.opts.reconnectTimeoutMs;
    }
  }

  private isClosed(): boolean {
    return this.stateValue === "closed";
  }
}
