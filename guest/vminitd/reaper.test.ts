import { describe, expect, it } from "vitest";
import { createLogger } from "./log.ts";
import { type ChildTable, Reaper } from "./reaper.ts";

/** A fake process table: zombies with their raw wait status, reaped at most once. */
class FakeTable implements ChildTable {
  readonly zombies = new Map<number, number>();
  readonly reapedPids: number[] = [];
  zombieChildren(): number[] {
    return [...this.zombies.keys()];
  }
  reap(pid: number): { pid: number; status: number } | null {
    const status = this.zombies.get(pid);
    if (status === undefined) throw new Error("ECHILD");
    this.zombies.delete(pid);
    this.reapedPids.push(pid);
    return { pid, status };
  }
}

const log = createLogger({ write: () => {} });

function setup(maxUnclaimed?: number) {
  const table = new FakeTable();
  let t = 1000;
  const reaper = new Reaper(table, { log, now: () => new Date(t), maxUnclaimed });
  return { table, reaper, setTime: (ms: number) => (t = ms) };
}

describe("Reaper", () => {
  it("reaps zombies and hands statuses to waiters", async () => {
    const { table, reaper } = setup();
    const waiting = reaper.waitFor(10);
    table.zombies.set(10, 3 << 8);
    table.zombies.set(11, 9);
    const exits = reaper.reapNow();
    expect(exits.map((e) => [e.pid, e.exitCode, e.signal])).toEqual([
      [10, 3, null],
      [11, 137, 9],
    ]);
    await expect(waiting).resolves.toMatchObject({ pid: 10, exitCode: 3 });
    expect(reaper.stats).toMatchObject({ reaped: 2, unclaimed: 1, waiting: 0 });
  });

  it("never touches pids left to another owner", () => {
    const { table, reaper } = setup();
    const release = reaper.leaveToOwner(20);
    table.zombies.set(20, 0);
    expect(reaper.reapNow()).toEqual([]);
    expect(table.reapedPids).toEqual([]);
    release();
    expect(reaper.reapNow().map((e) => e.pid)).toEqual([20]);
  });

  it("keeps an unclaimed exit for a waiter that comes later, but not for one that started after it", async () => {
    const { table, reaper } = setup();
    table.zombies.set(30, 1 << 8);
    reaper.reapNow();
    await expect(reaper.waitFor(30, 1000)).resolves.toMatchObject({ exitCode: 1 });
    table.zombies.set(31, 2 << 8);
    reaper.reapNow();
    let settled = false;
    void reaper.waitFor(31, 5000).then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
  });

  it("bounds the unclaimed statuses, dropping the oldest", async () => {
    const { table, reaper } = setup(2);
    for (const pid of [1, 2, 3]) table.zombies.set(pid, 0);
    reaper.reapNow();
    expect(reaper.stats.unclaimed).toBe(2);
    let first = false;
    void reaper.waitFor(1).then(() => (first = true));
    await expect(reaper.waitFor(3)).resolves.toMatchObject({ pid: 3 });
    expect(first).toBe(false);
  });

  it("survives a child collected elsewhere between listing and waitpid", () => {
    const { reaper } = setup();
    const table: ChildTable = {
      zombieChildren: () => [40],
      reap: () => {
        throw new Error("ECHILD");
      },
    };
    const r = new Reaper(table, { log });
    expect(r.reapNow()).toEqual([]);
    expect(reaper.stats.reaped).toBe(0);
  });

  it("coalesces scheduled runs and notifies listeners", async () => {
    const { table, reaper } = setup();
    const seen: number[] = [];
    reaper.onExit((e) => seen.push(e.pid));
    table.zombies.set(50, 0);
    reaper.schedule();
    reaper.schedule();
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([50]);
  });
});
