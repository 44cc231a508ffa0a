import { describe, expect, it } from "vitest";
import { CleanupError, CleanupStack } from "./cleanup.ts";
import { IllegalTransitionError, VmStateMachine } from "./state-machine.ts";

describe("VM state machine", () => {
  it("walks the happy path and reports each change", () => {
    const sm = new VmStateMachine();
    const seen: string[] = [];
    sm.onChange((to, from) => seen.push(`${from}>${to}`));
    for (const s of ["starting", "running", "stopping", "stopped"] as const) sm.to(s);
    expect(seen).toEqual(["new>starting", "starting>running", "running>stopping", "stopping>stopped"]);
  });

  it("throws on illegal transitions and leaves the state alone", () => {
    const sm = new VmStateMachine();
    expect(() => sm.to("running")).toThrow(IllegalTransitionError);
    expect(() => sm.to("running")).toThrow("illegal VM state transition new → running");
    sm.to("starting");
    sm.to("failed");
    expect(() => sm.to("stopping")).toThrow(IllegalTransitionError);
    expect(sm.state).toBe("failed");
  });
});

describe("cleanup stack", () => {
  it("runs steps newest first, all of them, once, and names the failures", async () => {
    const stack = new CleanupStack();
    const order: string[] = [];
    stack.push("a", () => {
      order.push("a");
    });
    stack.push("b", () => {
      throw new Error("b broke");
    });
    stack.push("c", async () => {
      order.push("c");
    });
    const failures = await stack.run();
    expect(order).toEqual(["c", "a"]);
    expect(failures.map((f) => [f.step, f.error.message])).toEqual([["b", "b broke"]]);
    expect(await stack.run()).toBe(failures);
    expect(() => stack.push("late", () => {})).toThrow(/cleanup already started/);
  });

  it("runOrThrow lists every failed step", async () => {
    const stack = new CleanupStack();
    stack.push("x", () => Promise.reject(new Error("gone")));
    stack.push("y", () => {
      throw "str";
    });
    await expect(stack.runOrThrow()).rejects.toThrow(CleanupError);
    await expect(stack.runOrThrow()).rejects.toThrow("cleanup failed: y: str; x: gone");
  });
});
