import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Clock } from "./dial.ts";
import { HostLink } from "./host-link.ts";
import { createLogger } from "./log.ts";

function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

const log = createLogger({ write: () => {} });

describe("HostLink", () => {
  it("retries until the host listens, then serves", async () => {
    const clock = fakeClock();
    let tries = 0;
    const served: PassThrough[] = [];
    let gaveUp = "";
    const link = new HostLink(
      {
        dial: () => {
          if (++tries < 4) throw new Error("connect: ECONNRESET");
          return new PassThrough();
        },
        serve: (s) => {
          served.push(s as PassThrough);
          return { closed: new Promise((r) => s.once("close", () => r())) };
        },
        onGiveUp: (r) => {
          gaveUp = r;
        },
        clock,
        log,
      },
      { dialTimeoutMs: 1000, reconnectTimeoutMs: 100 },
    );
    const done = link.start();
    await new Promise((r) => setImmediate(r));
    expect(tries).toBe(4);
    expect(link.state).toBe("connected");
    expect(served).toHaveLength(1);
    await link.close();
    await done;
    expect(link.state).toBe("closed");
    expect(gaveUp).toBe("");
  });

  it("gives up when the host never answers within the window", async () => {
    const clock = fakeClock();
    let reason = "";
    const link = new HostLink(
      {
        dial: () => {
          throw new Error("connect: ECONNRESET");
        },
        serve: () => ({ closed: Promise.resolve() }),
        onGiveUp: (r) => {
          reason = r;
        },
        clock,
        log,
      },
      { dialTimeoutMs: 500, reconnectTimeoutMs: 100 },
    );
    await link.start();
    expect(link.state).toBe("gave-up");
    expect(reason).toMatch(
      /host unreachable after \d+ attempts in \d+ ms \(last error: connect: ECONNRESET\)/,
    );
    expect(clock.t).toBeLessThanOrEqual(500);
  });

  it("redials after a lost connection and gives up when the reconnect window passes", async () => {
    const clock = fakeClock();
    let dials = 0;
    let reason = "";
    const connected: number[] = [];
    const link = new HostLink(
      {
        dial: () => {
          dials++;
          if (dials > 2) throw new Error("connect: ECONNRESET");
          return new PassThrough();
        },
        // Each connection drops right away.
        serve: () => ({ closed: Promise.resolve() }),
        onGiveUp: (r) => {
          reason = r;
        },
        onConnected: (n) => connected.push(n),
        clock,
        log,
      },
      { dialTimeoutMs: 1000, reconnectTimeoutMs: 200 },
    );
    await link.start();
    expect(connected).toEqual([1, 2]);
    expect(link.state).toBe("gave-up");
    expect(reason).toMatch(/host unreachable/);
  });
});
