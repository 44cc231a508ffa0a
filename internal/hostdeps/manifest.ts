import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PackageRecord } from "./packages-index.ts";
import { type PrefixSet, RECIPE_VERSION } from "./sets.ts";

/**
 * `<prefixDir>/manifest.json`: what `beetroot setup` installed, so that every other part of
 * beetroot can find it (see index.ts) and the next setup run can tell in a second whether
 * anything needs doing.
 */
export const MANIFEST_SCHEMA = 1;

export interface ManifestPackage {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
}

export interface ManifestSet {
  readonly suite: string;
  /** Version of the set's first root package, e.g. containerd's. */
  readonly version: string;
  readonly fingerprint: string;
  /** Absolute directory the set was unpacked into. */
  readonly root: string;
  readonly packages: readonly ManifestPackage[];
  /** Absolute paths by role (see sets.ts). */
  readonly files: Readonly<Record<string, string>>;
  readonly installedAt: string;
}

export interface Manifest {
  readonly schema: number;
  readonly recipe: number;
  readonly sets: Readonly<Record<string, ManifestSet>>;
  readonly system: {
    readonly packages: readonly { readonly name: string; readonly version: string }[];
    readonly files: Readonly<Record<string, string>>;
    readonly checkedAt: string;
  };
}

export function manifestPath(prefixDir: string): string {
  return join(prefixDir, "manifest.json");
}

/**
 * The identity of a set's content: recipe version, how the set is put together, and every
 * package by name, version and hash. Same inputs → same prefix, so the prefix can be reused.
 */
export function setFingerprint(
  set: PrefixSet,
  packages: readonly Pick<PackageRecord, "name" | "version" | "sha256">[],
): string {
  const description = {
    recipe: RECIPE_VERSION,
    name: set.name,
    suite: set.suite,
    roots: set.roots.map((r) => [r.name, r.describe ?? ""]),
    closure: set.closure,
    usrMerged: set.usrMerged,
    wrap: set.wrap,
    files: set.files,
    packages: [...packages]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((p) => [p.name, p.version, p.sha256]),
  };
  return createHash("sha256").update(JSON.stringify(description)).digest("hex");
}

export function readManifest(prefixDir: string): Manifest | undefined {
  const file = manifestPath(prefixDir);
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(
      `${file} is not valid JSON (${(err as Error).message}); delete it and run \`npx beetroot setup\``,
    );
  }
  const m = parsed as Partial<Manifest>;
  if (typeof m !== "object" || m === null || m.schema !== MANIFEST_SCHEMA || typeof m.sets !== "object") {
    // An older or foreign layout is treated as absent: setup rebuilds, loaders report "run setup".
    return undefined;
  }
  return m as Manifest;
}

/** Writes atomically (temp file + rename) so a reader never sees half a manifest. */
export function writeManifest(prefixDir: string, manifest: Manifest): void {
  const file = manifestPath(prefixDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, file);
}

/** A set is reusable when its fingerprint matches and every file it promises is still there. */
export function isSetCurrent(entry: ManifestSet | undefined, fingerprint: string): boolean {
  if (!entry || entry.fingerprint !== fingerprint) return false;
  return Object.values(entry.files).every((f) => existsSync(f));
}
