/**
 * Orderly power-off, as any init does it: SIGTERM to every process, a grace period, SIGKILL to the
 * rest, then close the host link (so replies already queued reach the host), flush and unmount the
 * filesystems, and power off. Runs once; later requests join the one in progress.
 */
import { errorMessage, type Logger } from "./log.ts";

export const SIGTERM = 15;
export const SIGKILL = 9;

export interface ShutdownOps {
  /** kill(-1, signal): every process but PID 1. */
  signalAll(signal: number): void;
  /** User processes still alive (not zombies, not kernel threads, not vminitd). */
  liveProcesses(): number[];
  reapNow(): void;
  closeHostLink(): Promise<void>;
  sync(): void;
  /** Unmounts everything but the root, innermost first; returns the targets that refused. */
  unmountAll(): string[];
  /** Never returns in a VM; throws if the kernel refused. */
  powerOff(): void;
  /** Fallback when power-off is refused: a restart, which QEMU's -no-reboot turns into an exit. */
  restart(): void;
  sleep(ms: number): Promise<void>;
  now(): number;
}

export interface ShutdownPlan {
  readonly reason: string;
  readonly graceMs: number;
  /** How long to wait for SIGKILLed processes to disappear. */
  readonly killWaitMs?: number;
}

const POLL_MS = 25;

export class SystemShutdown {
  private running: Promise<void> | undefined;

  constructor(
    private readonly ops: ShutdownOps,
    private readonly log: Logger,
  ) {}

  get inProgress(): boolean {
    return this.running !== undefined;
  }

  run(plan: ShutdownPlan): Promise<void> {
    if (this.running) {
      this.log.info("shutdown already in progress", { reason: plan.reason });
      return this.running;
    }
    this.running = this.sequence(plan);
    return this.running;
  }

  private async waitForExit(ms: number): Promise<number[]> {
    const deadline = this.ops.now() + ms;
    for (;;) {
      this.ops.reapNow();
      const live = this.ops.liveProcesses();
      if (live.length === 0 || this.ops.now() >= deadline) return live;
      await this.ops.sleep(POLL_MS);
    }
  }

  private async sequence(plan: ShutdownPlan): Promise<void> {
    const { ops, log } = this;
    const started = ops.now();
    log.info("shutting down", { reason: plan.reason, grace_ms: plan.graceMs });
    const step = (name: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        log.error("shutdown step failed", { step: name, error: errorMessage(err) });
      }
    };

    step("SIGTERM", () => ops.signalAll(SIGTERM));
    let live = await this.waitForExit(plan.graceMs);
    if (live.length > 0) {
      log.warn("processes outlived the grace period, killing them", {
        count: live.length,
        pids: live.slice(0, 20).join(","),
      });
      step("SIGKILL", () => ops.signalAll(SIGKILL));
      live = await this.waitForExit(plan.killWaitMs ?? 2000);
      if (live.length > 0) log.error("processes survived SIGKILL", { pids: live.slice(0, 20).join(",") });
    }
    try {
      await ops.closeHostLink();
    } catch (err) {
      log.error("shutdown step failed", { step: "close host link", error: errorMessage(err) });
    }
    step("sync", () => ops.sync());
    step("unmount", () => {
      const busy = ops.unmountAll();
      if (busy.length > 0) log.warn("filesystems left mounted", { targets: busy.join(",") });
    });
    step("sync", () => ops.sync());
    log.info("powering off", { elapsed_ms: ops.now() - started });
    try {
      ops.powerOff();
    } catch (err) {
      log.error("power-off refused, restarting instead", { error: errorMessage(err) });
      step("restart", () => ops.restart());
    }
  }
}
