import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  deriveDebianMirror,
  NoDebianMirrorError,
  parseDeb822Sources,
  parseOneLineSources,
} from "./apt-sources.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "testdata", name), "utf8");

describe("deb822 sources", () => {
  it("parses stanzas, skips comments and disabled entries, keeps inline keys", () => {
    const entries = parseDeb822Sources(fixture("security-first.sources"), "x.sources");
    expect(entries.map((e) => e.uris[0])).toEqual([
      "https://mirror.test/debian-security/",
      "https://src.test/debian",
      "https://mirror.test/debian/",
    ]);
    const main = entries[2]!;
    expect(main.suites).toEqual(["trixie", "trixie-updates"]);
    expect(main.components).toEqual(["main", "non-free-firmware"]);
    expect(main.signedBy?.split("\n")).toEqual([
      "-----BEGIN PGP PUBLIC KEY BLOCK-----",
      "",
      "mQINBGQ1bGNzYW1wbGUga2V5",
      "-----END PGP PUBLIC KEY BLOCK-----",
    ]);
  });

  it("derives the main archive of this machine's layout, not -security", () => {
    const entries = parseDeb822Sources(fixture("bookworm.sources"), "debian.sources");
    expect(deriveDebianMirror(entries, "bookworm", ["debian.sources"])).toEqual({
      uri: "http://mirror.test/debian",
      signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg",
      origin: "debian.sources",
    });
  });

  it("skips security, deb-src and disabled entries even when they come first", () => {
    const entries = parseDeb822Sources(fixture("security-first.sources"), "x.sources");
    expect(deriveDebianMirror(entries, "trixie", []).uri).toBe("https://mirror.test/debian");
  });

  it("rejects a field line without a colon", () => {
    expect(() => parseDeb822Sources("Types deb\n", "bad.sources")).toThrow(
      /bad.sources: malformed deb822 line/,
    );
  });
});

describe("one-line sources.list", () => {
  it("parses options, strips comments and reads signed-by", () => {
    const entries = parseOneLineSources(fixture("sources.list"), "sources.list");
    expect(entries).toHaveLength(4);
    expect(entries[2]).toEqual({
      types: ["deb"],
      uris: ["http://mirror.test/debian"],
      suites: ["bookworm"],
      components: ["main", "contrib"],
      signedBy: "/usr/share/keyrings/debian-archive-keyring.gpg",
      origin: "sources.list",
    });
  });

  it("derives the main archive, skipping deb-src and the security archive", () => {
    const entries = parseOneLineSources(fixture("sources.list"), "sources.list");
    const m = deriveDebianMirror(entries, "bookworm", ["sources.list"]);
    expect(m.uri).toBe("http://mirror.test/debian");
    expect(m.signedBy).toBe("/usr/share/keyrings/debian-archive-keyring.gpg");
  });

  it("rejects garbage lines", () => {
    expect(() => parseOneLineSources("debx http://a b\n", "l")).toThrow(/malformed sources.list line/);
  });
});

describe("no usable mirror", () => {
  it("names the files searched when only security or foreign archives exist", () => {
    const entries = [
      ...parseOneLineSources("deb http://security.test/debian-security bookworm-security main\n", "a.list"),
      ...parseOneLineSources("deb https://deb.nodesource.test/node_20.x nodistro main\n", "b.list"),
      ...parseOneLineSources("deb file:/srv/debian bookworm main\n", "c.list"),
    ];
    expect(() => deriveDebianMirror(entries, "bookworm", ["a.list", "b.list", "c.list"])).toThrow(
      NoDebianMirrorError,
    );
    expect(() => deriveDebianMirror(entries, "bookworm", ["a.list", "b.list"])).toThrow(/a\.list, b\.list/);
  });

  it("prefers the entry for the machine's own codename", () => {
    const entries = parseOneLineSources(
      "deb http://old.test/debian bullseye main\ndeb http://own.test/debian bookworm main\n",
      "l",
    );
    expect(deriveDebianMirror(entries, "bookworm", []).uri).toBe("http://own.test/debian");
    expect(deriveDebianMirror(entries, "trixie", []).uri).toBe("http://old.test/debian");
  });
});
