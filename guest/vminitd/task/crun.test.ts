import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ProgramRunner } from "../runner.ts";
import { Crun, CrunError, crunLogMessages } from "./crun.ts";

describe("crunLogMessages", () => {
  it("extracts messages from crun's JSON log", () => {
    const log =
      '{"msg": "mount `/x` to `/y`: No such file or directory", "level": "error", "time": "2025-01-01T00:00:00Z"}\n' +
      '{"msg": "debug chatter", "level": "debug"}\nnot json\n';
    expect(crunLogMessages(log)).toEqual(["mount `/x` to `/y`: No such file or directory", "not json"]);
  });
});

describe("Crun", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("builds argv with its root and log, and reports only the new log lines on failure", async () => {
    dir = mkdtempSync(join(tmpdir(), "crun-"));
    const logFile = join(dir, "crun.log");
    writeFileSync(logFile, '{"msg": "old failure", "level": "error"}\n');
    const calls: string[][] = [];
    const run: ProgramRunner = async (argv) => {
      calls.push([...argv]);
      writeFileSync(
        logFile,
        '{"msg": "old failure", "level": "error"}\n{"msg": "container `c1` already exists", "level": "error"}\n',
      );
      return { exitCode: 1, signal: null, output: "", truncated: false, timedOut: false, durationMs: 1 };
    };
    const crun = new Crun(run, logFile);
    const err = await crun.create("c1", "/b", "/b/init.pid", "/b/console.sock", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrunError);
    expect((err as Error).message).toBe("crun create failed (exit 1): container `c1` already exists");
    expect(calls[0]).toEqual([
      "/usr/bin/crun",
      "--root=/run/crun",
      `--log=file:${logFile}`,
      "--log-format=json",
      "create",
      "--bundle=/b",
      "--pid-file=/b/init.pid",
      "--console-socket=/b/console.sock",
      "c1",
    ]);
  });

  it("passes kill --all and update --resources", async () => {
    dir = mkdtempSync(join(tmpdir(), "crun-"));
    const calls: string[][] = [];
    const run: ProgramRunner = async (argv) => {
      calls.push(argv.slice(4));
      return { exitCode: 0, signal: null, output: "", truncated: false, timedOut: false, durationMs: 1 };
    };
    const crun = new Crun(run, join(dir, "crun.log"));
    await crun.kill("c1", 9, true);
    await crun.update("c1", "/b/res.json");
    await crun.exec("c1", "/b/p.json", "/b/p.pid", undefined, {});
    expect(calls).toEqual([
      ["kill", "--all", "c1", "9"],
      ["update", "--resources=/b/res.json", "c1"],
      ["exec", "--detach", "--process=/b/p.json", "--pid-file=/b/p.pid", "c1"],
    ]);
  });
});
