import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { copyTree, excludeByPatterns, hashTree, walkTree } from "./tree.ts";

describe("trees", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "tree-"));
    dirs.push(d);
    return d;
  };
  const sample = (root: string, order: "ab" | "ba") => {
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    mkdirSync(join(root, "usr/share/doc/x"), { recursive: true });
    const files = order === "ab" ? ["a", "b"] : ["b", "a"];
    for (const f of files) writeFileSync(join(root, "usr/bin", f), `content ${f}`);
    chmodSync(join(root, "usr/bin/a"), 0o755);
    writeFileSync(join(root, "usr/share/doc/x/README"), "docs");
    symlinkSync("usr/bin", join(root, "bin"));
  };

  it("walks sorted, parents first", () => {
    const root = tmp();
    sample(root, "ba");
    expect(walkTree(root)).toEqual([
      "bin",
      "usr",
      "usr/bin",
      "usr/bin/a",
      "usr/bin/b",
      "usr/share",
      "usr/share/doc",
      "usr/share/doc/x",
      "usr/share/doc/x/README",
    ]);
  });

  it("hashes content and modes, not creation order or mtimes", () => {
    const a = tmp();
    const b = tmp();
    sample(a, "ab");
    sample(b, "ba");
    expect(hashTree(a)).toBe(hashTree(b));
    chmodSync(join(b, "usr/bin/b"), 0o700);
    expect(hashTree(a)).not.toBe(hashTree(b));
  });

  it("copies with exclusions, keeping symlinks and modes", () => {
    const src = tmp();
    const dst = tmp();
    sample(src, "ab");
    const exclude = excludeByPatterns([/^usr\/share\/doc(\/|$)/]);
    copyTree(src, dst, exclude);
    expect(walkTree(dst)).toEqual(["bin", "usr", "usr/bin", "usr/bin/a", "usr/bin/b", "usr/share"]);
    expect(readlinkSync(join(dst, "bin"))).toBe("usr/bin");
    expect(lstatSync(join(dst, "usr/bin/a")).mode & 0o777).toBe(0o755);
    expect(hashTree(dst)).toBe(hashTree(src, exclude));
  });
});
