import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { INIT_LEAF, setupCgroup2 } from "./cgroup.ts";
import { createLogger } from "./log.ts";

describe("setupCgroup2", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("moves init into its leaf and enables the wanted controllers that exist", () => {
    dir = mkdtempSync(join(tmpdir(), "cg-"));
    writeFileSync(join(dir, "cgroup.controllers"), "cpuset cpu io memory hugetlb\n");
    writeFileSync(join(dir, "cgroup.subtree_control"), "");
    const r = setupCgroup2(dir, 1, createLogger({ write: () => {} }));
    expect(readFileSync(join(dir, INIT_LEAF, "cgroup.procs"), "utf8")).toBe("1");
    expect(r.enabled).toEqual(["cpu", "cpuset", "io", "memory"]);
    expect(r.missing).toEqual(["pids"]);
    // A plain file keeps only the last write; the kernel's interface accumulates them.
    expect(readFileSync(join(dir, "cgroup.subtree_control"), "utf8")).toBe("+memory");
  });

  it("fails with the path when the hierarchy is not mounted", () => {
    dir = mkdtempSync(join(tmpdir(), "cg-"));
    expect(() => setupCgroup2(dir, 1, createLogger({ write: () => {} }))).toThrow(/cgroup\.controllers/);
  });
});
