import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { liveUserProcesses, parseStat, readProcStats, zombieChildren } from "./proc-table.ts";

function statLine(pid: number, comm: string, state: string, ppid: number, flags: number): string {
  return `${pid} (${comm}) ${state} ${ppid} ${pid} ${pid} 0 -1 ${flags} 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n`;
}

describe("parseStat", () => {
  it("handles command names with spaces and parentheses", () => {
    expect(parseStat(statLine(42, "evil) Z 1 (x", "S", 7, 0x400100))).toEqual({
      pid: 42,
      state: "S",
      ppid: 7,
      flags: 0x400100,
    });
  });
  it("parses this process's real stat line", () => {
    const s = readProcStats("/proc").find((p) => p.pid === process.pid);
    expect(s?.ppid).toBe(process.ppid);
  });
  it("rejects garbage with the text in the message", () => {
    expect(() => parseStat("nonsense")).toThrow(/malformed \/proc stat line: "nonsense"/);
  });
});

describe("process lists", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("selects zombie children of one parent and live user processes", () => {
    dir = mkdtempSync(join(tmpdir(), "proc-"));
    const add = (pid: number, state: string, ppid: number, flags = 0x400000) => {
      mkdirSync(join(dir, String(pid)));
      writeFileSync(join(dir, String(pid), "stat"), statLine(pid, `p${pid}`, state, ppid, flags));
    };
    add(1, "S", 0);
    add(2, "S", 0, 0x208040); // kthreadd
    add(10, "Z", 1);
    add(11, "Z", 5);
    add(12, "S", 1);
    add(13, "R", 12);
    mkdirSync(join(dir, "self"));
    mkdirSync(join(dir, "99")); // vanished between readdir and read
    expect(zombieChildren(1, dir)).toEqual([10]);
    expect(liveUserProcesses(1, dir).sort((a, b) => a - b)).toEqual([12, 13]);
  });
});
