import { describe, expect, it } from "vitest";
import type { ProgramResult, ProgramRunner } from "./runner.ts";
import { SelfTests, UnknownSelfTestError } from "./selftests.ts";

const result = (over: Partial<ProgramResult>): ProgramResult => ({
  exitCode: 0,
  signal: null,
  output: "",
  truncated: false,
  timedOut: false,
  durationMs: 1500,
  ...over,
});

describe("SelfTests", () => {
  it("runs the binder program against /dev/binderfs and reports success", async () => {
    const seen: string[][] = [];
    const run: ProgramRunner = async (argv) => {
      seen.push([...argv]);
      return result({ output: "OK\n" });
    };
    const r = await new SelfTests(run).execute("binder");
    expect(seen).toEqual([["/usr/lib/beetroot/selftest/binder-roundtrip", "/dev/binderfs"]]);
    expect(r).toEqual({ ok: true, exitCode: 0, output: "OK\n", durationSeconds: 1.5 });
  });

  it("is not ok on a non-zero exit or a timeout, and says so", async () => {
    const tests = new SelfTests(async () => result({ exitCode: 137, timedOut: true, output: "x" }));
    const r = await tests.execute("binder");
    expect(r.ok).toBe(false);
    expect(r.output).toContain("[killed after 30000 ms]");
  });

  it("refuses unknown names, listing the known ones", async () => {
    const tests = new SelfTests(async () => result({}));
    await expect(tests.execute("toString")).rejects.toThrow(UnknownSelfTestError);
    await expect(tests.execute("nope")).rejects.toThrow('no self-test named "nope" (known: binder)');
  });

  it("runs one test at a time", async () => {
    let running = 0;
    let maxRunning = 0;
    const run: ProgramRunner = async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return result({});
    };
    const tests = new SelfTests(run);
    await Promise.all([tests.execute("binder"), tests.execute("binder"), tests.execute("binder")]);
    expect(maxRunning).toBe(1);
  });
});
