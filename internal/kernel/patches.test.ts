import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadPatches, patchedFiles, patchSetDigest } from "./patches.ts";

const diff = (file: string) => `why\n\n--- a/${file}\n+++ b/${file}\n@@ -1 +1 @@\n-x\n+y\n`;

describe("kernel patches", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("loads *.patch in name order with the files each one changes", () => {
    dir = mkdtempSync(join(tmpdir(), "kpatch-"));
    writeFileSync(join(dir, "0002-b.patch"), diff("arch/x86/b.c"));
    writeFileSync(join(dir, "0001-a.patch"), diff("net/a.c") + diff("net/a.h"));
    writeFileSync(join(dir, "notes.txt"), "not a patch");
    const set = loadPatches(dir);
    expect(set.map((p) => [p.name, p.files])).toEqual([
      ["0001-a.patch", ["net/a.c", "net/a.h"]],
      ["0002-b.patch", ["arch/x86/b.c"]],
    ]);
  });

  it("refuses a patch that names no file", () => {
    dir = mkdtempSync(join(tmpdir(), "kpatch-"));
    writeFileSync(join(dir, "0001-empty.patch"), "only prose\n");
    expect(() => loadPatches(dir)).toThrow(/changes no file/);
  });

  it("has no patches when the folder is missing, and a digest that follows names and contents", () => {
    dir = mkdtempSync(join(tmpdir(), "kpatch-"));
    expect(loadPatches(join(dir, "missing"))).toEqual([]);
    const p = { name: "1.patch", path: "", text: diff("a.c"), files: ["a.c"] };
    const base = patchSetDigest([p]);
    expect(patchSetDigest([{ ...p }])).toBe(base);
    expect(patchSetDigest([{ ...p, name: "2.patch" }])).not.toBe(base);
    expect(patchSetDigest([{ ...p, text: diff("b.c") }])).not.toBe(base);
    expect(patchedFiles(diff("x/y.c"))).toEqual(["x/y.c"]);
  });
});
