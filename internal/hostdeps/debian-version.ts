/**
 * Debian version ordering (deb-version(7)): `[epoch:]upstream[-revision]`, compared part by part
 * with dpkg's rules, where `~` sorts before everything (even the end of the string) and letters
 * sort before other symbols. We need it to pick the newest version an index offers and to check
 * dependency constraints without shelling out to `dpkg --compare-versions` thousands of times.
 */

interface ParsedVersion {
  readonly epoch: number;
  readonly upstream: string;
  readonly revision: string;
}

export function parseDebianVersion(version: string): ParsedVersion {
  const trimmed = version.trim();
  if (trimmed === "") throw new Error("empty Debian version");
  let rest = trimmed;
  let epoch = 0;
  const colon = rest.indexOf(":");
  if (colon >= 0) {
    const e = rest.slice(0, colon);
    if (!/^\d+$/.test(e)) throw new Error(`invalid epoch in Debian version "${version}"`);
    epoch = Number(e);
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf("-");
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : "";
  if (!/^\d/.test(upstream)) throw new Error(`Debian version "${version}" must start with a digit`);
  return { epoch, upstream, revision };
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";

function weight(c: string | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (c === "~") return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const wa = weight(a[i]);
      const wb = weight(b[j]);
      if (wa !== wb) return wa - wb;
      i++;
      j++;
    }
    while (a[i] === "0") i++;
    while (b[j] === "0") j++;
    let firstDiff = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** Negative when a < b, zero when equal, positive when a > b (the sign is what matters). */
export function compareDebianVersions(a: string, b: string): number {
  const pa = parseDebianVersion(a);
  const pb = parseDebianVersion(b);
  if (pa.epoch !== pb.epoch) return pa.epoch - pb.epoch;
  return compareFragment(pa.upstream, pb.upstream) || compareFragment(pa.revision, pb.revision);
}

export type Relation = "<<" | "<=" | "=" | ">=" | ">>";

export function satisfies(version: string, relation: Relation, wanted: string): boolean {
  const c = compareDebianVersions(version, wanted);
  switch (relation) {
    case "<<":
      return c < 0;
    case "<=":
      return c <= 0;
    case "=":
      return c === 0;
    case ">=":
      return c >= 0;
    case ">>":
      return c > 0;
  }
}

/** The upstream part without epoch and Debian revision: `1:2.1.9+ds1-5` → `2.1.9+ds1`. */
export function upstreamVersion(version: string): string {
  return parseDebianVersion(version).upstream;
}
