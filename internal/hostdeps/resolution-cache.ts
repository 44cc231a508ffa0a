import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PackageRecord } from "./packages-index.ts";
import { type PrefixSet, RECIPE_VERSION } from "./sets.ts";

/** What the rest of setup needs of a resolved package (no dependency lists). */
export type ResolvedPackage = Pick<
  PackageRecord,
  "name" | "version" | "architecture" | "filename" | "size" | "sha256"
>;

/**
 * Resolving the sets means parsing two ~60 MB Packages indexes (~3 s). The answer only changes
 * when the lists are re-fetched or the recipe changes, so it is kept in `<cacheDir>/apt/resolved.json`
 * under a key made of both; a warm `beetroot setup` then needs no parsing at all.
 */
export function resolutionKey(
  listsIdentity: Readonly<Record<string, string>>,
  sets: readonly PrefixSet[],
): string {
  const recipe = sets.map((s) => ({
    ...s,
    roots: s.roots.map((r) => [r.name, r.describe ?? ""]),
    verify: s.verify.map((v) => [v.file, v.args, String(v.expect)]),
  }));
  return createHash("sha256").update(JSON.stringify({ RECIPE_VERSION, listsIdentity, recipe })).digest("hex");
}

const file = (cacheDir: string) => join(cacheDir, "apt", "resolved.json");

export function readResolution(cacheDir: string, key: string): Map<string, ResolvedPackage[]> | undefined {
  const f = file(cacheDir);
  if (!existsSync(f)) return undefined;
  try {
    const data = JSON.parse(readFileSync(f, "utf8")) as {
      key?: string;
      sets?: Record<string, ResolvedPackage[]>;
    };
    if (data.key !== key || typeof data.sets !== "object" || data.sets === null) return undefined;
    return new Map(Object.entries(data.sets));
  } catch {
    return undefined; // a damaged cache only costs a re-resolution
  }
}

export function writeResolution(
  cacheDir: string,
  key: string,
  sets: ReadonlyMap<string, readonly ResolvedPackage[]>,
): void {
  const f = file(cacheDir);
  const slim = Object.fromEntries(
    [...sets].map(([name, pkgs]) => [
      name,
      pkgs.map((p) => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        filename: p.filename,
        size: p.size,
        sha256: p.sha256,
      })),
    ]),
  );
  writeFileSync(`${f}.tmp`, JSON.stringify({ key, sets: slim }));
  renameSync(`${f}.tmp`, f);
}
