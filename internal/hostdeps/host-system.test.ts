import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SetupError } from "./errors.ts";
import {
  findDebianMirror,
  isDebianLike,
  parseOsRelease,
  readAptSources,
  readOsRelease,
} from "./host-system.ts";

function fakeRoot(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "beetroot-root-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const bookworm =
  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n';

describe("os-release", () => {
  it("parses Debian and Ubuntu-likes", () => {
    const os = parseOsRelease(bookworm);
    expect(os).toEqual({
      id: "debian",
      idLike: [],
      versionId: "12",
      codename: "bookworm",
      prettyName: "Debian GNU/Linux 12 (bookworm)",
    });
    expect(isDebianLike(os)).toBe(true);
    expect(isDebianLike(parseOsRelease("ID=linuxmint\nID_LIKE='ubuntu debian'\n"))).toBe(true);
  });
  it("refuses a non-Debian system with what to do", () => {
    const root = fakeRoot({ "etc/os-release": 'ID=fedora\nPRETTY_NAME="Fedora Linux 41"\n' });
    expect(() => readOsRelease(root)).toThrow(SetupError);
    expect(() => readOsRelease(root)).toThrow(
      /Fedora Linux 41 \(ID=fedora\).*\n.*docs\/host-dependencies.md/,
    );
  });
  it("refuses a system without os-release", () => {
    expect(() => readOsRelease(fakeRoot({}))).toThrow(/neither \/etc\/os-release nor \/usr\/lib\/os-release/);
  });
  it("falls back to /usr/lib/os-release", () => {
    expect(readOsRelease(fakeRoot({ "usr/lib/os-release": bookworm })).codename).toBe("bookworm");
  });
});

describe("apt sources on disk", () => {
  it("reads sources.list, *.list and *.sources, ignoring other files", () => {
    const root = fakeRoot({
      "etc/apt/sources.list": "deb http://security.test/debian-security bookworm-security main\n",
      "etc/apt/sources.list.d/debian.sources":
        "Types: deb\nURIs: http://m.test/debian\nSuites: bookworm\nComponents: main\n",
      "etc/apt/sources.list.d/node.list.disabled-by-farm": "deb http://x.test/debian bookworm main\n",
    });
    const { entries, searched } = readAptSources(root);
    expect(entries).toHaveLength(2);
    expect(searched.map((s) => s.slice(root.length))).toEqual([
      "/etc/apt/sources.list",
      "/etc/apt/sources.list.d/debian.sources",
    ]);
    expect(findDebianMirror(parseOsRelease(bookworm), root).uri).toBe("http://m.test/debian");
  });
  it("explains a machine without a Debian mirror", () => {
    const root = fakeRoot({
      "etc/apt/sources.list": "deb http://security.test/debian-security bookworm-security main\n",
    });
    expect(() => findDebianMirror(parseOsRelease(bookworm), root)).toThrow(
      /no Debian archive mirror found .*sources.list/,
    );
  });
});
