import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * beetroot's patches to Debian's kernel source (`assets/kernel/patches/*.patch`, applied in name
 * order with `patch -p1`). Each one works around a fact of this stack that configuration cannot
 * change; the patch's own header says which.
 */
export interface KernelPatch {
  readonly name: string;
  readonly path: string;
  readonly text: string;
  /** Source files the patch changes (its `+++ b/…` lines). */
  readonly files: readonly string[];
}

export function patchedFiles(text: string): string[] {
  const files: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\+\+\+ b\/(\S+)/.exec(line);
    if (m?.[1] && !files.includes(m[1])) files.push(m[1]);
  }
  return files;
}

/** The patches in `dir` (none when it does not exist), sorted by name. */
export function loadPatches(dir: string): KernelPatch[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.endsWith(".patch"))
    .sort()
    .map((name) => {
      const path = join(dir, name);
      const text = readFileSync(path, "utf8");
      const files = patchedFiles(text);
      if (files.length === 0) throw new Error(`${path} changes no file (no "+++ b/<path>" line)`);
      return { name, path, text, files };
    });
}

/** One digest for the whole set: names and contents, in order. */
export function patchSetDigest(patches: readonly KernelPatch[]): string {
  const h = createHash("sha256");
  for (const p of patches) h.update(`${p.name}\0${p.text}\0`);
  return h.digest("hex");
}
