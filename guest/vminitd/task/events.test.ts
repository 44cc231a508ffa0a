import { describe, expect, it } from "vitest";
import { EventHub, type TaskEventInit } from "./events.ts";

const exit = (id: string): TaskEventInit => ({ event: { case: "exit", value: { id, exitStatus: 0 } } });

describe("EventHub", () => {
  it("delivers what happens after subscribing, in order, to every subscriber, until aborted", async () => {
    const hub = new EventHub();
    hub.publish(exit("before"));
    const a = new AbortController();
    const b = new AbortController();
    const seenA: string[] = [];
    const seenB: string[] = [];
    const readA = (async () => {
      for await (const ev of hub.subscribe(a.signal)) seenA.push(String(ev.event?.value?.id));
    })();
    const readB = (async () => {
      for await (const ev of hub.subscribe(b.signal)) seenB.push(String(ev.event?.value?.id));
    })();
    await new Promise((r) => setImmediate(r));
    expect(hub.subscribers).toBe(2);
    hub.publish(exit("one"));
    hub.publish({ event: { case: "oom", value: { id: "two" } } });
    await new Promise((r) => setImmediate(r));
    a.abort();
    await readA;
    hub.publish(exit("three"));
    await new Promise((r) => setImmediate(r));
    b.abort();
    await readB;
    expect(seenA).toEqual(["one", "two"]);
    expect(seenB).toEqual(["one", "two", "three"]);
    expect(hub.subscribers).toBe(0);
  });
});
