import { describe, expect, it } from "vitest";
import { createRunner, ProgramStartError } from "./runner.ts";

describe("createRunner", () => {
  const owned: number[] = [];
  const released: number[] = [];
  const run = createRunner({
    leaveToOwner: (pid) => {
      owned.push(pid);
      return () => released.push(pid);
    },
  });

  it("captures output and the exit code, and hands the pid to its owner for the run", async () => {
    const r = await run(["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], {
      timeoutMs: 5000,
      maxOutputBytes: 1024,
    });
    expect(r.exitCode).toBe(7);
    expect(r.output).toContain("out\n");
    expect(r.output).toContain("err\n");
    expect(r.timedOut).toBe(false);
    expect(owned.length).toBe(1);
    expect(released).toEqual(owned);
  });

  it("reports a signal as 128+n", async () => {
    const r = await run(["/bin/sh", "-c", "kill -TERM $$"], { timeoutMs: 5000, maxOutputBytes: 10 });
    expect(r).toMatchObject({ exitCode: 143, signal: "SIGTERM" });
  });

  it("kills at the deadline", async () => {
    const r = await run(["/bin/sleep", "10"], { timeoutMs: 100, maxOutputBytes: 10 });
    expect(r).toMatchObject({ timedOut: true, exitCode: 137, signal: "SIGKILL" });
  });

  it("bounds the captured output", async () => {
    const r = await run(["/bin/sh", "-c", "head -c 5000 /dev/zero"], {
      timeoutMs: 5000,
      maxOutputBytes: 100,
    });
    expect(r.output.length).toBe(100);
    expect(r.truncated).toBe(true);
  });

  it("fails precisely when the program does not exist", async () => {
    await expect(run(["/nonexistent/prog"], { timeoutMs: 1000, maxOutputBytes: 10 })).rejects.toThrow(
      ProgramStartError,
    );
    await expect(run(["/nonexistent/prog"], { timeoutMs: 1000, maxOutputBytes: 10 })).rejects.toThrow(
      /cannot run \/nonexistent\/prog: .*ENOENT/,
    );
  });
});
