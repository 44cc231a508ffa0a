import { satisfies } from "./debian-version.ts";
import type { Alternative, PackageRecord, PackagesIndex } from "./packages-index.ts";

/**
 * Dependency closure over ONE suite's Packages index, for unpacking into a private prefix (no
 * dpkg, no maintainer scripts). Deliberately simpler than apt's solver: there is nothing
 * installed to be compatible with, so for each `a | b` clause the first alternative the index
 * can satisfy wins (Debian policy puts the preferred one first), and a clause that an already
 * chosen package satisfies adds nothing. Only Depends and Pre-Depends count: Recommends are
 * optional by definition and would pull in half the archive.
 */

export interface RootRequest {
  readonly name: string;
  /** Which versions are acceptable, e.g. a major.minor line or a minimum; newest acceptable wins. */
  readonly accepts?: (version: string) => boolean;
  /** Human wording of `accepts`, for errors: ">= 1.8", "2.1.x". */
  readonly describe?: string;
}

export interface ResolveOptions {
  /** Follow Depends/Pre-Depends (true) or take the roots alone (false). */
  readonly closure: boolean;
  /**
   * Packages never unpacked even when depended upon: those that only serve maintainer scripts
   * (debconf, adduser, ...) which never run in an unpacked prefix.
   */
  readonly exclude?: ReadonlySet<string>;
  /** Suite name for error messages. */
  readonly suite: string;
}

export class UnresolvableError extends Error {
  constructor(
    message: string,
    readonly packageName: string,
  ) {
    super(message);
    this.name = "UnresolvableError";
  }
}

function altText(a: Alternative): string {
  return a.relation ? `${a.name} (${a.relation} ${a.version})` : a.name;
}

function provides(record: PackageRecord, alt: Alternative): boolean {
  for (const p of record.provides) {
    if (p.name !== alt.name) continue;
    if (!alt.relation) return true;
    // A versioned dependency is satisfied by a Provides only when that Provides is versioned.
    if (p.version !== undefined && satisfies(p.version, alt.relation, alt.version!)) return true;
  }
  return false;
}

function satisfiedBy(record: PackageRecord, alt: Alternative): boolean {
  if (record.name === alt.name) return !alt.relation || satisfies(record.version, alt.relation, alt.version!);
  return provides(record, alt);
}

function candidate(index: PackagesIndex, alt: Alternative): PackageRecord | undefined {
  for (const r of index.versions(alt.name)) {
    if (!alt.relation || satisfies(r.version, alt.relation, alt.version!)) return r;
  }
  const providers = index.providers(alt.name).filter((r) => provides(r, alt));
  // Several providers (e.g. `awk`): take the one with the lexically first name for a stable answer.
  providers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return providers[0];
}

export function resolvePackages(
  index: PackagesIndex,
  roots: readonly RootRequest[],
  opts: ResolveOptions,
): PackageRecord[] {
  const chosen = new Map<string, PackageRecord>();
  const queue: PackageRecord[] = [];
  for (const root of roots) {
    const all = index.versions(root.name);
    if (all.length === 0) {
      throw new UnresolvableError(
        `package "${root.name}" is not in the ${opts.suite} index (is the suite's main component in the mirror?)`,
        root.name,
      );
    }
    const pick = all.find((r) => (root.accepts ? root.accepts(r.version) : true));
    if (!pick) {
      throw new UnresolvableError(
        `${opts.suite} offers ${root.name} ${all.map((r) => r.version).join(", ")} but beetroot needs ${root.describe ?? "another version"}`,
        root.name,
      );
    }
    chosen.set(pick.name, pick);
    queue.push(pick);
  }
  if (!opts.closure) return byName([...chosen.values()]);

  const exclude = opts.exclude ?? new Set<string>();
  const all = () => chosen.values();
  while (queue.length > 0) {
    const record = queue.shift()!;
    for (const group of [...record.preDepends, ...record.depends]) {
      if (group.some((alt) => exclude.has(alt.name))) continue;
      let done = false;
      for (const c of all()) {
        if (group.some((alt) => satisfiedBy(c, alt))) {
          done = true;
          break;
        }
      }
      if (done) continue;
      let picked: PackageRecord | undefined;
      for (const alt of group) {
        picked = candidate(index, alt);
        if (picked) break;
      }
      if (!picked) {
        throw new UnresolvableError(
          `${record.name} ${record.version} depends on ${group.map(altText).join(" | ")}, which the ${opts.suite} index cannot satisfy`,
          record.name,
        );
      }
      const clash = chosen.get(picked.name);
      if (clash && clash.version !== picked.version) {
        throw new UnresolvableError(
          `${record.name} needs ${group.map(altText).join(" | ")} but ${clash.name} ${clash.version} was already chosen`,
          picked.name,
        );
      }
      chosen.set(picked.name, picked);
      queue.push(picked);
    }
  }
  return byName([...chosen.values()]);
}

function byName(records: PackageRecord[]): PackageRecord[] {
  return records.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
