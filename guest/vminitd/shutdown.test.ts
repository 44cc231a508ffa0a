import { describe, expect, it } from "vitest";
import { createLogger } from "./log.ts";
import { type ShutdownOps, SIGKILL, SIGTERM, SystemShutdown } from "./shutdown.ts";

function fake(opts: { stubborn?: number[]; diesOnTerm?: number[]; powerOffFails?: boolean }) {
  const calls: string[] = [];
  let t = 0;
  let live = [...(opts.stubborn ?? []), ...(opts.diesOnTerm ?? [])];
  const ops: ShutdownOps = {
    signalAll: (sig) => {
      calls.push(`signal ${sig}`);
      if (sig === SIGTERM) live = live.filter((p) => !(opts.diesOnTerm ?? []).includes(p));
      if (sig === SIGKILL) live = [];
    },
    liveProcesses: () => live,
    reapNow: () => {},
    closeHostLink: async () => {
      calls.push("close link");
    },
    sync: () => calls.push("sync"),
    unmountAll: () => {
      calls.push("unmount");
      return [];
    },
    powerOff: () => {
      calls.push("poweroff");
      if (opts.powerOffFails) throw new Error("EPERM");
    },
    restart: () => calls.push("restart"),
    sleep: async (ms) => {
      t += ms;
    },
    now: () => t,
  };
  return { ops, calls, elapsed: () => t };
}

const log = createLogger({ write: () => {} });

describe("SystemShutdown", () => {
  it("stops after SIGTERM when everything exits, without SIGKILL", async () => {
    const f = fake({ diesOnTerm: [5, 6] });
    await new SystemShutdown(f.ops, log).run({ reason: "test", graceMs: 10_000 });
    expect(f.calls).toEqual(["signal 15", "close link", "sync", "unmount", "sync", "poweroff"]);
    expect(f.elapsed()).toBe(0);
  });

  it("waits the grace period, then SIGKILLs the stubborn", async () => {
    const f = fake({ stubborn: [7] });
    await new SystemShutdown(f.ops, log).run({ reason: "test", graceMs: 1000 });
    expect(f.calls).toEqual(["signal 15", "signal 9", "close link", "sync", "unmount", "sync", "poweroff"]);
    expect(f.elapsed()).toBeGreaterThanOrEqual(1000);
    expect(f.elapsed()).toBeLessThan(1100);
  });

  it("restarts when power-off is refused", async () => {
    const f = fake({ powerOffFails: true });
    await new SystemShutdown(f.ops, log).run({ reason: "test", graceMs: 0 });
    expect(f.calls.slice(-2)).toEqual(["poweroff", "restart"]);
  });

  it("runs once; a second request joins the first", async () => {
    const f = fake({});
    const s = new SystemShutdown(f.ops, log);
    const a = s.run({ reason: "a", graceMs: 0 });
    const b = s.run({ reason: "b", graceMs: 0 });
    expect(a).toBe(b);
    await a;
    expect(f.calls.filter((c) => c === "poweroff")).toHaveLength(1);
  });
});
