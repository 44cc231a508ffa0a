/**
 * The one place that collects exit statuses in the guest. As PID 1, vminitd inherits every orphan
 * (container processes whose crun parent exited, daemons' grandchildren); each must be waited for or
 * it stays a zombie forever. Bun waits for the children it spawned itself, by pid, so the reaper must
 * not steal those: it never calls waitpid(-1). It lists zombie children from /proc and waits for each
 * one by pid, skipping pids handed to another owner with `leaveToOwner`.
 *
 * Statuses nobody asked for yet are kept (bounded) so a waiter that registers after the exit — a
 * container that died before crun returned its pid — still gets it; `sinceMs` keeps a waiter from
 * taking the status of an earlier process that had the same pid.
 */
import { decodeWaitStatus, type ExitInfo } from "./exit-status.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface ChildTable {
  /** Pids of this process's direct children that are zombies now. */
  zombieChildren(): number[];
  /** waitpid(pid, WNOHANG): null while the child runs; throws (ECHILD, …) when it is not ours. */
  reap(pid: number): { pid: number; status: number } | null;
}

export interface ProcessExit extends ExitInfo {
  readonly pid: number;
  /** The raw wait status. */
  readonly status: number;
  readonly exitedAt: Date;
}

interface Waiter {
  readonly sinceMs: number;
  readonly resolve: (exit: ProcessExit) => void;
}

export interface ReaperOptions {
  readonly log: Logger;
  readonly now?: () => Date;
  /** How many unclaimed exit statuses to keep; the oldest go first. */
  readonly maxUnclaimed?: number;
}

export class Reaper {
  private readonly foreign = new Set<number>();
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly unclaimed = new Map<number, ProcessExit>();
  private readonly listeners = new Set<(exit: ProcessExit) => void>();
  private readonly now: () => Date;
  private readonly maxUnclaimed: number;
  private scheduled = false;
  private reaped = 0;

  constructor(
    private readonly table: ChildTable,
    private readonly opts: ReaperOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
    this.maxUnclaimed = opts.maxUnclaimed ?? 4096;
  }

  /**
   * Leaves `pid` to another owner that waits for it itself (Bun's spawn). Call it in the same tick as
   * the spawn, before the event loop can run the reaper; call the returned function once the owner
   * has collected the status.
   */
  leaveToOwner(pid: number): () => void {
    this.foreign.add(pid);
    return () => {
      this.foreign.delete(pid);
    };
  }

  /** Resolves with the exit of `pid`, which must be (or become) a child of this process. */
  waitFor(pid: number, sinceMs = 0): Promise<ProcessExit> {
    const done = this.unclaimed.get(pid);
    if (done !== undefined && done.exitedAt.getTime() >= sinceMs) {
      this.unclaimed.delete(pid);
      return Promise.resolve(done);
    }
    return new Promise((resolve) => {
      const list = this.waiters.get(pid) ?? [];
      list.push({ sinceMs, resolve });
      this.waiters.set(pid, list);
    });
  }

  /** Observes every exit the reaper collects (not those of foreign pids). */
  onExit(listener: (exit: ProcessExit) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Runs `reapNow` once on the next turn of the event loop, however often it is asked (SIGCHLD storms). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.reapNow();
    });
  }

  get stats(): { reaped: number; unclaimed: number; waiting: number; foreign: number } {
    return {
      reaped: this.reaped,
      unclaimed: this.unclaimed.size,
      waiting: this.waiters.size,
      foreign: this.foreign.size,
    };
  }

  /** Collects every zombie child that is ours to collect and dispatches the statuses. */
  reapNow(): ProcessExit[] {
    let zombies: number[];
    try {
      zombies = this.table.zombieChildren();
    } catch (err) {
      this.opts.log.error("reaper: cannot list children", { error: errorMessage(err) });
      return [];
    }
    const exits: ProcessExit[] = [];
    for (const pid of zombies) {
      if (this.foreign.has(pid)) continue;
      let r: { pid: number; status: number } | null;
      try {
        r = this.table.reap(pid);
      } catch (err) {
        // ECHILD: its owner collected it between the listing and now.
        this.opts.log.debug("reaper: waitpid failed", { pid, error: errorMessage(err) });
        continue;
      }
      if (r === null) continue;
      const exit: ProcessExit = {
        pid: r.pid,
        status: r.status,
        exitedAt: this.now(),
        ...decodeWaitStatus(r.status),
      };
      this.reaped++;
      exits.push(exit);
      this.dispatch(exit);
    }
    return exits;
  }

  private dispatch(exit: ProcessExit): void {
    for (const listener of this.listeners) {
      try {
        listener(exit);
      } catch (err) {
        this.opts.log.error("reaper: exit listener failed", { pid: exit.pid, error: errorMessage(err) });
      }
    }
    const list = this.waiters.get(exit.pid);
    const at = exit.exitedAt.getTime();
    const matching = list?.filter((w) => w.sinceMs <= at) ?? [];
    if (matching.length > 0) {
      const rest = list?.filter((w) => w.sinceMs > at) ?? [];
      if (rest.length > 0) this.waiters.set(exit.pid, rest);
      else this.waiters.delete(exit.pid);
      for (const w of matching) w.resolve(exit);
      return;
    }
    this.unclaimed.delete(exit.pid);
    this.unclaimed.set(exit.pid, exit);
    while (this.unclaimed.size > this.maxUnclaimed) {
      const oldest = this.unclaimed.keys().next().value;
      if (oldest === undefined) break;
      this.unclaimed.delete(oldest);
    }
  }
}
