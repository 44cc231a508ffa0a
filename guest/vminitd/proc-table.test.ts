import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { childrenOf, liveUserProcesses, parseStat, readProcStats, zombieChildren } from "./proc-table.ts";

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

  it("uses the per-thread children lists when the kernel has them", () => {
    dir = mkdtempSync(join(tmpdir(), "proc-"));
    const add = (pid: number, state: string, ppid: number) => {
      mkdirSync(join(dir, String(pid)), { recursive: true });
      writeFileSync(join(dir, String(pid), "stat"), statLine(pid, `p${pid}`, state, ppid, 0x400000));
    };
    add(1, "S", 0);
    add(10, "Z", 1);
    add(11, "S", 1);
    add(12, "Z", 1);
    add(20, "Z", 1); // a zombie child the lists do not name is not looked at: they are the truth
    add(30, "Z", 5);
    const task = (tid: number, children: string) => {
      mkdirSync(join(dir, "1", "task", String(tid)), { recursive: true });
      writeFileSync(join(dir, "1", "task", String(tid), "children"), children);
    };
    task(1, "10 11 ");
    task(7, "12 13 "); // 13 vanished before its stat was read
    task(8, "");
    expect(childrenOf(1, dir)?.sort((a, b) => a - b)).toEqual([10, 11, 12, 13]);
    expect(zombieChildren(1, dir).sort((a, b) => a - b)).toEqual([10, 12]);
  });

  it("falls back to all of /proc without children lists", () => {
    dir = mkdtempSync(join(tmpdir(), "proc-"));
    mkdirSync(join(dir, "1", "task", "1"), { recursive: true });
    writeFileSync(join(dir, "1", "stat"), statLine(1, "init", "S", 0, 0x400000));
    mkdirSync(join(dir, "10"));
    writeFileSync(join(dir, "10", "stat"), statLine(10, "p10", "Z", 1, 0x400000));
    expect(childrenOf(1, dir)).toBeUndefined();
    expect(zombieChildren(1, dir)).toEqual([10]);
  });

  it("reads this process's real children lists", () => {
    expect(childrenOf(process.pid)).toEqual(expect.any(Array));
  });
});
