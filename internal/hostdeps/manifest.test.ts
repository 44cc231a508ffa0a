import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  isSetCurrent,
  MANIFEST_SCHEMA,
  type Manifest,
  type ManifestSet,
  readManifest,
  setFingerprint,
  writeManifest,
} from "./manifest.ts";
import { PREFIX_SETS } from "./sets.ts";

const set = PREFIX_SETS.find((s) => s.name === "erofs-utils")!;
const pkgs = [
  { name: "erofs-utils", version: "1.8.6-1", sha256: "a".repeat(64) },
  { name: "libc6", version: "2.41-12", sha256: "b".repeat(64) },
];

describe("set fingerprint", () => {
  it("is stable and independent of package order", () => {
    expect(setFingerprint(set, pkgs)).toBe(setFingerprint(set, [...pkgs].reverse()));
    expect(setFingerprint(set, pkgs)).toMatch(/^[0-9a-f]{64}$/);
  });
  it("changes with any package version or hash, and with the set recipe", () => {
    const base = setFingerprint(set, pkgs);
    expect(setFingerprint(set, [pkgs[0]!, { ...pkgs[1]!, version: "2.41-13" }])).not.toBe(base);
    expect(setFingerprint(set, [pkgs[0]!, { ...pkgs[1]!, sha256: "c".repeat(64) }])).not.toBe(base);
    expect(setFingerprint({ ...set, wrap: [] }, pkgs)).not.toBe(base);
    expect(setFingerprint({ ...set, suite: "sid" }, pkgs)).not.toBe(base);
  });
});

describe("manifest file", () => {
  const dir = mkdtempSync(join(tmpdir(), "beetroot-manifest-"));
  const file = join(dir, "present");
  writeFileSync(file, "");
  const entry: ManifestSet = {
    suite: "trixie",
    version: "1.8.6-1",
    fingerprint: "f1",
    root: dir,
    packages: pkgs,
    files: { mkfsErofs: file },
    installedAt: "2026-01-01T00:00:00.000Z",
  };
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    recipe: 1,
    sets: { "erofs-utils": entry },
    system: { packages: [], files: {}, checkedAt: "2026-01-01T00:00:00.000Z" },
  };

  it("round-trips", () => {
    writeManifest(dir, manifest);
    expect(readManifest(dir)).toEqual(manifest);
  });
  it("is current only with the same fingerprint and every file present", () => {
    expect(isSetCurrent(entry, "f1")).toBe(true);
    expect(isSetCurrent(entry, "f2")).toBe(false);
    expect(isSetCurrent(undefined, "f1")).toBe(false);
    expect(isSetCurrent({ ...entry, files: { mkfsErofs: join(dir, "gone") } }, "f1")).toBe(false);
  });
  it("treats another schema as absent and names a corrupt file", () => {
    const other = join(dir, "other");
    mkdirSync(other);
    writeFileSync(join(other, "manifest.json"), JSON.stringify({ schema: 999, sets: {} }));
    expect(readManifest(other)).toBeUndefined();
    writeFileSync(join(other, "manifest.json"), "{not json");
    expect(() => readManifest(other)).toThrow(/manifest.json is not valid JSON.*npx beetroot setup/);
    expect(readManifest(join(dir, "missing"))).toBeUndefined();
  });
});
