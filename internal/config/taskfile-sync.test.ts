import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// Taskfile.yml is a convenience mirror of package.json's scripts; this keeps them from drifting.
const root = new URL("../../", import.meta.url);
const scripts = Object.keys(JSON.parse(readFileSync(new URL("package.json", root), "utf8")).scripts);
const taskfile = readFileSync(new URL("Taskfile.yml", root), "utf8");

function tasks(): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let current: string | undefined;
  for (const line of taskfile.split("\n")) {
    const name = /^ {2}([a-z:-]+):\s*$/.exec(line);
    if (name) {
      current = name[1]!;
      result.set(current, []);
      continue;
    }
    const cmds = /^ {4}cmds:\s*\[(.*)\]\s*$/.exec(line);
    if (cmds && current)
      result.set(
        current,
        cmds[1]!.split(",").map((c) => c.trim()),
      );
  }
  return result;
}

describe("Taskfile.yml", () => {
  const all = tasks();
  it("has the targets the project promises", () => {
    for (const t of ["setup", "build", "assets", "test", "bench", "demo", "lint"])
      expect(all.has(t)).toBe(true);
  });
  it("maps every task to an existing npm script of the same name", () => {
    for (const [name, cmds] of all) {
      expect(cmds.length, `task ${name} has no cmds`).toBeGreaterThan(0);
      for (const cmd of cmds) {
        const m = /^npm (?:run )?([a-z:-]+)$/.exec(cmd) ?? /^npm (test)$/.exec(cmd);
        expect(m, `task ${name}: "${cmd}" is not an npm script call`).not.toBeNull();
        const script = m![1]!;
        expect(scripts, `task ${name} calls missing script ${script}`).toContain(script);
        expect(script).toBe(name);
      }
    }
  });
});
