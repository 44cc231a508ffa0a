/**
 * The machine's apt sources, read to find which Debian mirror it already trusts and reaches.
 * beetroot fetches newer suites (trixie, sid) through that same mirror, so no host name is ever
 * written into the project and an air-gapped site with its own mirror keeps working.
 *
 * Two formats exist: deb822 `.sources` files (sources.list(5) "DEB822-STYLE FORMAT") and the
 * one-line `deb [options] uri suite component...` format of `sources.list` / `*.list`.
 */

export interface AptSourceEntry {
  readonly types: readonly string[];
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
  /** A keyring path, several paths, or an inline ASCII-armoured key block, verbatim. */
  readonly signedBy?: string;
  /** File the entry came from, for messages. */
  readonly origin: string;
}

/** Suite names of the Debian archive (codenames and aliases) without the -updates/-security suffixes. */
const debianSuites = new Set([
  "buster",
  "bullseye",
  "bookworm",
  "trixie",
  "forky",
  "duke",
  "sid",
  "oldoldstable",
  "oldstable",
  "stable",
  "testing",
  "unstable",
]);

export function parseDeb822Sources(text: string, origin: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  // Comment lines are removed first: a comment between stanzas must not glue them together, and
  // one between a field and its continuation must not end the field.
  const lines = text.split("\n").filter((l) => !l.startsWith("#"));
  const stanzas: string[][] = [[]];
  for (const line of lines) {
    if (line.trim() === "") {
      if (stanzas[stanzas.length - 1]!.length > 0) stanzas.push([]);
      continue;
    }
    stanzas[stanzas.length - 1]!.push(line);
  }
  for (const stanza of stanzas) {
    if (stanza.length === 0) continue;
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const line of stanza) {
      if ((line.startsWith(" ") || line.startsWith("\t")) && current !== undefined) {
        fields.set(current, `${fields.get(current)}\n${line.trim() === "." ? "" : line.trim()}`);
        continue;
      }
      const colon = line.indexOf(":");
      if (colon <= 0) throw new Error(`${origin}: malformed deb822 line "${line}"`);
      current = line.slice(0, colon).trim().toLowerCase();
      fields.set(current, line.slice(colon + 1).trim());
    }
    const enabled = (fields.get("enabled") ?? "yes").toLowerCase();
    if (enabled === "no" || enabled === "false") continue;
    const words = (key: string) => (fields.get(key) ?? "").split(/\s+/).filter((w) => w !== "");
    const signedBy = fields.get("signed-by");
    entries.push({
      types: words("types"),
      uris: words("uris"),
      suites: words("suites"),
      components: words("components"),
      ...(signedBy !== undefined && signedBy.trim() !== "" ? { signedBy: signedBy.trim() } : {}),
      origin,
    });
  }
  return entries;
}

export function parseOneLineSources(text: string, origin: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m) throw new Error(`${origin}: malformed sources.list line "${raw.trim()}"`);
    let signedBy: string | undefined;
    for (const opt of (m[2] ?? "").split(/\s+/)) {
      const eq = opt.indexOf("=");
      if (eq > 0 && opt.slice(0, eq) === "signed-by") signedBy = opt.slice(eq + 1).replaceAll(",", " ");
    }
    entries.push({
      types: [m[1]!],
      uris: [m[3]!],
      suites: [m[4]!],
      components: m[5]!.split(/\s+/).filter((w) => w !== ""),
      ...(signedBy !== undefined ? { signedBy } : {}),
      origin,
    });
  }
  return entries;
}

export interface DebianMirror {
  /** Base URI of the main Debian archive, e.g. `http://<mirror>/debian` (no trailing slash). */
  readonly uri: string;
  readonly signedBy?: string;
  /** The source file it came from. */
  readonly origin: string;
}

export class NoDebianMirrorError extends Error {
  constructor(readonly searched: readonly string[]) {
    super(
      `no Debian archive mirror found in the apt sources (${searched.join(", ") || "no source files"}): ` +
        "beetroot fetches trixie/sid packages through the mirror the machine already uses, so add a " +
        "`deb <mirror>/debian <codename> main` entry (or its deb822 equivalent) and run `apt-get update` first",
    );
    this.name = "NoDebianMirrorError";
  }
}

function isSecurityArchive(uri: string, suite: string): boolean {
  return suite.endsWith("-security") || suite.endsWith("/updates") || /debian-security\/?$/.test(uri);
}

/**
 * Picks the main Debian archive: a binary (`deb`) entry over http(s) serving a Debian suite
 * itself (not -updates, -backports or -security) with the `main` component. The entry naming the
 * machine's own codename wins when several qualify; otherwise the first in file order.
 */
export function deriveDebianMirror(
  entries: readonly AptSourceEntry[],
  codename: string | undefined,
  searched: readonly string[],
): DebianMirror {
  const candidates: { mirror: DebianMirror; own: boolean }[] = [];
  for (const e of entries) {
    if (!e.types.includes("deb") || !e.components.includes("main")) continue;
    for (const uri of e.uris) {
      if (!/^https?:\/\//.test(uri)) continue;
      for (const suite of e.suites) {
        if (isSecurityArchive(uri, suite) || !debianSuites.has(suite)) continue;
        const mirror: DebianMirror = {
          uri: uri.replace(/\/+$/, ""),
          ...(e.signedBy !== undefined ? { signedBy: e.signedBy } : {}),
          origin: e.origin,
        };
        candidates.push({ mirror, own: suite === codename });
      }
    }
  }
  const pick = candidates.find((c) => c.own) ?? candidates[0];
  if (!pick) throw new NoDebianMirrorError(searched);
  return pick.mirror;
}
