import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compareDebianVersions } from "./debian-version.ts";
import { parseDependencyField, parsePackagesIndex } from "./packages-index.ts";
import { resolvePackages, UnresolvableError } from "./resolver.ts";

const index = parsePackagesIndex(readFileSync(join(import.meta.dirname, "testdata", "Packages"), "utf8"));
const names = (rs: { name: string; version: string }[]) => rs.map((r) => `${r.name}=${r.version}`);

describe("Packages index", () => {
  it("keeps every version newest first and ignores description continuation lines", () => {
    expect(index.versions("app").map((r) => r.version)).toEqual(["2.0-1", "1.9-1"]);
    expect(index.versions("app")[0]!.depends.map((g) => g.map((a) => a.name))).toEqual([
      ["libfoo1"],
      ["awk", "mawk"],
      ["libc6"],
    ]);
    expect(index.providers("awk").map((r) => r.name)).toEqual(["mawk"]);
  });
  it("parses dependency syntax including arch qualifiers and obsolete relations", () => {
    expect(parseDependencyField("a:any (>= 1), b [amd64] | c (< 2)")).toEqual([
      [{ name: "a", relation: ">=", version: "1" }],
      [{ name: "b" }, { name: "c", relation: "<=", version: "2" }],
    ]);
    expect(() => parseDependencyField("Bad Name")).toThrow(/cannot parse dependency/);
  });
  it("rejects stanzas without a hash", () => {
    expect(() => parsePackagesIndex("Package: x\nVersion: 1\nFilename: f\n")).toThrow(
      /lacks Version, Filename or SHA256/,
    );
  });
});

describe("closure resolution", () => {
  it("takes roots alone when closure is off", () => {
    expect(names(resolvePackages(index, [{ name: "app" }], { closure: false, suite: "test" }))).toEqual([
      "app=2.0-1",
    ]);
  });

  it("follows Depends and Pre-Depends, first satisfiable alternative, virtual via Provides, minus excluded", () => {
    const got = resolvePackages(index, [{ name: "app" }], {
      closure: true,
      suite: "test",
      exclude: new Set(["init-system-helpers"]),
    });
    expect(names(got)).toEqual([
      "app=2.0-1",
      "gcc-14-base=14.2.0-19",
      "libbar-alt=1:0.5-1",
      "libc6=2.41-12",
      "libfoo1=1.3-2",
      "libgcc-s1=14.2.0-19",
      "mawk=1.3.4-1",
    ]);
  });

  it("without the exclusion follows init-system-helpers into perl-base (absent here, so it fails)", () => {
    expect(() => resolvePackages(index, [{ name: "app" }], { closure: true, suite: "test" })).toThrow(
      /perl-base/,
    );
  });

  it("picks the newest version a root accepts and explains a mismatch", () => {
    const older = resolvePackages(
      index,
      [{ name: "app", accepts: (v) => compareDebianVersions(v, "2.0") < 0, describe: "< 2.0" }],
      {
        closure: false,
        suite: "test",
      },
    );
    expect(names(older)).toEqual(["app=1.9-1"]);
    expect(() =>
      resolvePackages(index, [{ name: "app", accepts: () => false, describe: ">= 9" }], {
        closure: false,
        suite: "test",
      }),
    ).toThrow("test offers app 2.0-1, 1.9-1 but beetroot needs >= 9");
  });

  it("names a missing root and an unsatisfiable versioned dependency", () => {
    expect(() => resolvePackages(index, [{ name: "nope" }], { closure: true, suite: "sid" })).toThrow(
      UnresolvableError,
    );
    expect(() => resolvePackages(index, [{ name: "nope" }], { closure: true, suite: "sid" })).toThrow(
      /package "nope" is not in the sid index/,
    );
    expect(() => resolvePackages(index, [{ name: "needs-newer" }], { closure: true, suite: "t" })).toThrow(
      "needs-newer 1.0 depends on libc6 (>= 2.50), which the t index cannot satisfy",
    );
  });
});
