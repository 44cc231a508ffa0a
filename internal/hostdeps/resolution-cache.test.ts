import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readResolution, resolutionKey, writeResolution } from "./resolution-cache.ts";
import { PREFIX_SETS } from "./sets.ts";

describe("resolution cache", () => {
  const lists = { sid: "1700000000000:sources-a", trixie: "1700000000001:sources-b" };
  it("keys on the lists and the recipe", () => {
    const key = resolutionKey(lists, PREFIX_SETS);
    expect(resolutionKey({ ...lists }, PREFIX_SETS)).toBe(key);
    expect(resolutionKey({ ...lists, sid: "1700000009999:sources-a" }, PREFIX_SETS)).not.toBe(key);
    expect(resolutionKey(lists, PREFIX_SETS.slice(1))).not.toBe(key);
    const [first, ...rest] = PREFIX_SETS;
    expect(
      resolutionKey(lists, [{ ...first!, roots: [{ name: "containerd", describe: "2.2.x" }] }, ...rest]),
    ).not.toBe(key);
  });
  it("round-trips under the same key only, and survives a damaged file", () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "beetroot-resolve-"));
    mkdirSync(join(cacheDir, "apt"));
    const pkg = {
      name: "crun",
      version: "1.21-1",
      architecture: "amd64",
      filename: "pool/c/crun.deb",
      size: 1,
      sha256: "ab",
    };
    writeResolution(cacheDir, "k1", new Map([["guest-userspace", [pkg]]]));
    expect(readResolution(cacheDir, "k1")?.get("guest-userspace")).toEqual([pkg]);
    expect(readResolution(cacheDir, "k2")).toBeUndefined();
    writeFileSync(join(cacheDir, "apt", "resolved.json"), "{");
    expect(readResolution(cacheDir, "k1")).toBeUndefined();
  });
});
