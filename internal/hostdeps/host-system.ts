import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AptSourceEntry,
  type DebianMirror,
  deriveDebianMirror,
  parseDeb822Sources,
  parseOneLineSources,
} from "./apt-sources.ts";
import { SetupError } from "./errors.ts";

/** What `/etc/os-release` says about the machine (os-release(5)). */
export interface OsRelease {
  readonly id: string;
  readonly idLike: readonly string[];
  readonly versionId?: string;
  readonly codename?: string;
  readonly prettyName: string;
}

export function parseOsRelease(text: string): OsRelease {
  const vars = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!;
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1).replace(/\\(["'$`\\])/g, "$1");
    vars.set(m[1]!, value);
  }
  const id = vars.get("ID") ?? "linux";
  const codename = vars.get("VERSION_CODENAME") ?? vars.get("DEBIAN_CODENAME");
  const versionId = vars.get("VERSION_ID");
  return {
    id,
    idLike: (vars.get("ID_LIKE") ?? "").split(/\s+/).filter((w) => w !== ""),
    ...(versionId !== undefined ? { versionId } : {}),
    ...(codename !== undefined && codename !== "" ? { codename } : {}),
    prettyName: vars.get("PRETTY_NAME") ?? id,
  };
}

export function isDebianLike(os: OsRelease): boolean {
  return (
    os.id === "debian" || os.id === "ubuntu" || os.idLike.includes("debian") || os.idLike.includes("ubuntu")
  );
}

export function readOsRelease(root = "/"): OsRelease {
  for (const p of ["etc/os-release", "usr/lib/os-release"]) {
    const file = join(root, p);
    if (existsSync(file)) {
      const os = parseOsRelease(readFileSync(file, "utf8"));
      if (!isDebianLike(os)) {
        throw new SetupError(
          `this machine runs ${os.prettyName} (ID=${os.id}); beetroot setup installs its dependencies with apt from Debian suites`,
          "run it on Debian 12/13 (or an Ubuntu with the same packages), or install the dependencies listed in docs/host-dependencies.md by hand",
        );
      }
      return os;
    }
  }
  throw new SetupError(
    "neither /etc/os-release nor /usr/lib/os-release exists, so the distribution cannot be identified",
    "beetroot setup supports Debian 12/13; see docs/host-dependencies.md for the manual steps elsewhere",
  );
}

/** Every apt source entry the machine uses, from the one-line and deb822 files. */
export function readAptSources(root = "/"): { entries: AptSourceEntry[]; searched: string[] } {
  const entries: AptSourceEntry[] = [];
  const searched: string[] = [];
  const main = join(root, "etc/apt/sources.list");
  if (existsSync(main)) {
    searched.push(main);
    entries.push(...parseOneLineSources(readFileSync(main, "utf8"), main));
  }
  const dir = join(root, "etc/apt/sources.list.d");
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const file = join(dir, name);
      if (name.endsWith(".sources")) {
        searched.push(file);
        entries.push(...parseDeb822Sources(readFileSync(file, "utf8"), file));
      } else if (name.endsWith(".list")) {
        searched.push(file);
        entries.push(...parseOneLineSources(readFileSync(file, "utf8"), file));
      }
    }
  }
  return { entries, searched };
}

export function findDebianMirror(os: OsRelease, root = "/"): DebianMirror {
  const { entries, searched } = readAptSources(root);
  try {
    return deriveDebianMirror(entries, os.codename, searched);
  } catch (err) {
    throw new SetupError((err as Error).message, 'see docs/host-dependencies.md, section "Mirror"');
  }
}
