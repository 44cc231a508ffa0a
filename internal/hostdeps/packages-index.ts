import { compareDebianVersions, type Relation } from "./debian-version.ts";

/**
 * A Debian `Packages` index (the file `apt-get update` fetches per suite and component), reduced
 * to what closure resolution and downloads need. The signature chain (InRelease → Packages) was
 * already checked by apt when it stored the file; the SHA256 recorded here is then checked
 * against every .deb we use.
 */
export interface PackageRecord {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly filename: string;
  readonly size: number;
  readonly sha256: string;
  readonly depends: DependencyGroup[];
  readonly preDepends: DependencyGroup[];
  readonly provides: Provided[];
}

/** One comma-separated clause: any alternative satisfies it. */
export type DependencyGroup = Alternative[];

export interface Alternative {
  readonly name: string;
  readonly relation?: Relation;
  readonly version?: string;
}

export interface Provided {
  readonly name: string;
  readonly version?: string;
}

export interface PackagesIndex {
  /** Every version the index lists for a name, newest first. */
  versions(name: string): readonly PackageRecord[];
  /** Packages that provide a (usually virtual) name. */
  providers(name: string): readonly PackageRecord[];
  readonly size: number;
}

const relations = new Set<string>(["<<", "<=", "=", ">=", ">>"]);

function parseAlternative(text: string): Alternative {
  // `name[:arch] [(rel version)] [\[arch list\]] [<profiles>]`: binary indexes rarely carry the
  // last two, but they are legal, so they are dropped rather than misread as part of the name.
  const cleaned = text
    .replace(/\[[^\]]*\]/g, "")
    .replace(/<[^>]*>/g, "")
    .trim();
  const m = /^([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?$/.exec(
    cleaned,
  );
  if (!m) throw new Error(`cannot parse dependency "${text}"`);
  const name = m[1]!;
  if (m[2] === undefined) return { name };
  // `<` and `>` are obsolete spellings of `<=` and `>=` (deb-control(5)).
  const rel = m[2] === "<" ? "<=" : m[2] === ">" ? ">=" : m[2];
  if (!relations.has(rel)) throw new Error(`unknown relation in dependency "${text}"`);
  return { name, relation: rel as Relation, version: m[3]! };
}

export function parseDependencyField(value: string | undefined): DependencyGroup[] {
  if (value === undefined || value.trim() === "") return [];
  return value
    .split(",")
    .map((clause) => clause.trim())
    .filter((clause) => clause !== "")
    .map((clause) => clause.split("|").map((alt) => parseAlternative(alt)));
}

function parseProvides(value: string | undefined): Provided[] {
  return parseDependencyField(value).map((group) => {
    const alt = group[0]!;
    return alt.version === undefined ? { name: alt.name } : { name: alt.name, version: alt.version };
  });
}

const wanted = new Set([
  "Package",
  "Version",
  "Architecture",
  "Filename",
  "Size",
  "SHA256",
  "Depends",
  "Pre-Depends",
  "Provides",
]);

/** Parses the text of a Packages file. Stanzas without a SHA256 or Filename are rejected, not skipped. */
export function parsePackagesIndex(text: string): PackagesIndex {
  const byName = new Map<string, PackageRecord[]>();
  const byProvided = new Map<string, PackageRecord[]>();
  for (const stanza of text.split(/\n\s*\n/)) {
    if (stanza.trim() === "") continue;
    const fields = new Map<string, string>();
    for (const line of stanza.split("\n")) {
      if (line === "" || line[0] === " " || line[0] === "\t") continue; // continuation lines (descriptions)
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const key = line.slice(0, colon);
      if (wanted.has(key)) fields.set(key, line.slice(colon + 1).trim());
    }
    const name = fields.get("Package");
    if (name === undefined) continue;
    const version = fields.get("Version");
    const filename = fields.get("Filename");
    const sha256 = fields.get("SHA256");
    if (version === undefined || filename === undefined || sha256 === undefined) {
      throw new Error(`Packages index stanza for "${name}" lacks Version, Filename or SHA256`);
    }
    const record: PackageRecord = {
      name,
      version,
      architecture: fields.get("Architecture") ?? "",
      filename,
      size: Number(fields.get("Size") ?? "0"),
      sha256,
      depends: parseDependencyField(fields.get("Depends")),
      preDepends: parseDependencyField(fields.get("Pre-Depends")),
      provides: parseProvides(fields.get("Provides")),
    };
    const list = byName.get(name);
    if (list) list.push(record);
    else byName.set(name, [record]);
    for (const p of record.provides) {
      const providers = byProvided.get(p.name);
      if (providers) providers.push(record);
      else byProvided.set(p.name, [record]);
    }
  }
  for (const list of byName.values()) list.sort((a, b) => compareDebianVersions(b.version, a.version));
  return {
    versions: (n) => byName.get(n) ?? [],
    providers: (n) => byProvided.get(n) ?? [],
    size: byName.size,
  };
}
