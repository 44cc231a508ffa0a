import { existsSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { BeetrootPaths } from "../config/paths.ts";
import type { DebianMirror } from "./apt-sources.ts";
import { SetupError } from "./errors.ts";
import { run } from "./exec.ts";
import { findDebianMirror, readOsRelease } from "./host-system.ts";
import { withLock } from "./lock.ts";
import {
  isSetCurrent,
  MANIFEST_SCHEMA,
  type Manifest,
  type ManifestSet,
  readManifest,
  setFingerprint,
  writeManifest,
} from "./manifest.ts";
import type { PackagesIndex } from "./packages-index.ts";
import { createPrivateApt, type PrivateApt } from "./private-apt.ts";
import { type ResolvedPackage, readResolution, resolutionKey, writeResolution } from "./resolution-cache.ts";
import { resolvePackages, UnresolvableError } from "./resolver.ts";
import {
  MAINTAINER_ONLY,
  PREFIX_SETS,
  type PrefixSet,
  RECIPE_VERSION,
  type Suite,
  SYSTEM_FILES,
  SYSTEM_PACKAGES,
} from "./sets.ts";
import { installSystemPackages } from "./system-packages.ts";
import {
  createUsrMergeLinks,
  debPath,
  extractDeb,
  findLoaderLayout,
  removeTree,
  verifyDownloaded,
  writeWrapper,
} from "./unpack.ts";

export interface SetupOptions {
  readonly paths: BeetrootPaths;
  /** Re-fetch the private apt lists even when they are fresh. */
  readonly refresh: boolean;
  /** Lists younger than this are reused without `apt-get update`. */
  readonly maxListAgeHours: number;
  readonly log: (line: string) => void;
}

export function requireRoot(uid: number | undefined = process.getuid?.()): void {
  if (uid !== 0) {
    throw new SetupError(
      `beetroot setup must run as root (uid is ${uid ?? "unknown"}): it installs packages with apt-get and writes under /var/cache/beetroot`,
      "run `sudo npx beetroot setup`",
    );
  }
}

async function hostArch(): Promise<string> {
  const r = await run("dpkg", ["--print-architecture"]);
  const arch = r.stdout.trim();
  if (r.exitCode !== 0 || arch === "")
    throw new SetupError("`dpkg --print-architecture` failed", "is this a Debian system with dpkg?");
  if (arch !== "amd64") {
    throw new SetupError(
      `this machine is ${arch}; beetroot's micro-VMs are x86_64 only`,
      "run beetroot on an amd64 host",
    );
  }
  return arch;
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s.padEnd(n);
}

async function ensureFreshLists(apt: PrivateApt, opts: SetupOptions): Promise<void> {
  const age = apt.listsAgeHours();
  if (opts.refresh || age === undefined || age > opts.maxListAgeHours) {
    const why = opts.refresh
      ? "--refresh"
      : age === undefined
        ? "no lists yet"
        : `lists ${age.toFixed(1)} h old`;
    opts.log(`${apt.suite}: apt-get update with the private config (${why})`);
    await apt.update((l) => {
      if (/^(Get:|Err:|Ign:|W:|E:)/.test(l)) opts.log(`  ${l}`);
    });
  }
}

function resolveSet(set: PrefixSet, index: PackagesIndex): ResolvedPackage[] {
  try {
    return resolvePackages(index, set.roots, {
      closure: set.closure,
      exclude: new Set([...MAINTAINER_ONLY, ...(set.exclude ?? [])]),
      suite: set.suite,
    });
  } catch (err) {
    if (err instanceof UnresolvableError) {
      throw new SetupError(
        `set ${set.name}: ${err.message}`,
        `run \`npx beetroot setup --refresh\` to fetch current ${set.suite} lists; if it persists, the recipe in internal/hostdeps/sets.ts needs updating`,
      );
    }
    throw err;
  }
}

async function fetchDebs(
  set: PrefixSet,
  records: readonly ResolvedPackage[],
  apt: PrivateApt,
  debDir: string,
  arch: string,
  log: (line: string) => void,
): Promise<void> {
  const missing: ResolvedPackage[] = [];
  for (const r of records) if (!(await verifyDownloaded(debPath(debDir, r), r))) missing.push(r);
  if (missing.length === 0) return;
  const mb = missing.reduce((n, r) => n + r.size, 0) / 1e6;
  log(`${set.name}: downloading ${missing.length} package(s), ${mb.toFixed(1)} MB`);
  const incoming = join(debDir, "incoming");
  removeTree(incoming);
  await apt.download(missing, incoming, (l) => {
    if (/^(Get:|Err:|E:|W:)/.test(l)) log(`  ${l}`);
  });
  for (const r of missing) {
    // apt-get download names files name_version_arch.deb with the epoch colon escaped.
    const got = join(incoming, `${r.name}_${r.version.replace(":", "%3a")}_${r.architecture || arch}.deb`);
    if (!existsSync(got)) {
      throw new SetupError(
        `apt-get download reported success but ${got} is missing (have: ${readdirSync(incoming).join(", ")})`,
        "re-run `npx beetroot setup --refresh`",
      );
    }
    const dest = debPath(debDir, r);
    renameSync(got, dest);
    if (!(await verifyDownloaded(dest, r))) {
      removeTree(dest);
      throw new SetupError(
        `${r.name} ${r.version}: the downloaded .deb does not match the SHA256 in the signed ${set.suite} index`,
        "the mirror served a different file; re-run `npx beetroot setup --refresh`",
      );
    }
  }
  removeTree(incoming);
}

async function unpackSet(
  set: PrefixSet,
  records: readonly ResolvedPackage[],
  opts: SetupOptions,
  debDir: string,
): Promise<string> {
  const root = join(opts.paths.prefixDir, set.name);
  const staging = join(opts.paths.prefixDir, `.${set.name}.new-${process.pid}`);
  removeTree(staging);
  mkdirSync(staging, { recursive: true });
  if (set.usrMerged) createUsrMergeLinks(staging);
  opts.log(`${set.name}: unpacking ${records.length} package(s) with dpkg-deb (no dpkg database involved)`);
  for (const r of records) await extractDeb(debPath(debDir, r), staging);
  const old = join(opts.paths.prefixDir, `.${set.name}.old-${process.pid}`);
  if (existsSync(root)) renameSync(root, old);
  renameSync(staging, root);
  removeTree(old);
  if (set.wrap.length > 0) {
    const layout = findLoaderLayout(root);
    for (const program of set.wrap) writeWrapper(root, program, layout);
  }
  return root;
}

async function verifySet(set: PrefixSet, files: Record<string, string>): Promise<void> {
  for (const [role, file] of Object.entries(files)) {
    if (!existsSync(file)) {
      throw new SetupError(
        `set ${set.name}: ${role} (${file}) is not in the unpacked packages`,
        "the package layout changed: update internal/hostdeps/sets.ts",
      );
    }
  }
  for (const v of set.verify) {
    const file = files[v.file]!;
    const r = await run(file, [...v.args], { timeoutMs: 30_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    if (r.exitCode !== 0 || !v.expect.test(out)) {
      throw new SetupError(
        `set ${set.name}: \`${file} ${v.args.join(" ")}\` did not run on this host (exit ${r.exitCode}): ${out.trim().split("\n").slice(0, 3).join(" | ")}`,
        "the binary likely needs a newer glibc than the host has; the set must carry its own libc (closure + wrapper in sets.ts)",
      );
    }
  }
}

export interface SetupReport {
  readonly manifest: Manifest;
  readonly rows: readonly { set: string; version: string; suite: string; state: "cached" | "installed" }[];
}

export async function runSetup(opts: SetupOptions): Promise<SetupReport> {
  requireRoot();
  const os = readOsRelease();
  const codename = os.codename ?? os.versionId ?? os.id;
  const { log } = opts;
  mkdirSync(opts.paths.prefixDir, { recursive: true });
  return withLock(join(opts.paths.cacheDir, "setup.lock"), log, async () => {
    const sys = await installSystemPackages(SYSTEM_PACKAGES, codename, log);
    log(`system: ${SYSTEM_PACKAGES.length} packages from ${codename} present`);
    for (const [role, file] of Object.entries(SYSTEM_FILES)) {
      if (!existsSync(file))
        throw new SetupError(
          `${role} (${file}) is missing although its package is installed`,
          "reinstall the package that ships it",
        );
    }

    const arch = await hostArch();
    const mirror: DebianMirror = findDebianMirror(os);
    const suites = [...new Set(PREFIX_SETS.map((s) => s.suite))] as Suite[];
    const apts = new Map<Suite, PrivateApt>();
    for (const suite of suites)
      apts.set(suite, createPrivateApt({ cacheDir: opts.paths.cacheDir, mirror, suite, arch }));
    for (const suite of suites) await ensureFreshLists(apts.get(suite)!, opts);
    const key = resolutionKey(
      Object.fromEntries(suites.map((s) => [s, apts.get(s)!.listsIdentity()])),
      PREFIX_SETS,
    );
    let resolved = readResolution(opts.paths.cacheDir, key);
    if (!resolved) {
      log(`resolving ${PREFIX_SETS.length} sets against the ${suites.join(" and ")} indexes`);
      const indexes = new Map<Suite, PackagesIndex>();
      for (const suite of suites) indexes.set(suite, await apts.get(suite)!.loadIndex());
      resolved = new Map(PREFIX_SETS.map((set) => [set.name, resolveSet(set, indexes.get(set.suite)!)]));
      writeResolution(opts.paths.cacheDir, key, resolved);
    }

    const previous = readManifest(opts.paths.prefixDir);
    const sets: Record<string, ManifestSet> = { ...(previous?.sets ?? {}) };
    const debDir = join(opts.paths.cacheDir, "apt", "debs");
    mkdirSync(debDir, { recursive: true });
    const rows: SetupReport["rows"][number][] = [];
    const save = (): Manifest => {
      const manifest: Manifest = {
        schema: MANIFEST_SCHEMA,
        recipe: RECIPE_VERSION,
        sets,
        system: {
          packages: SYSTEM_PACKAGES.map((n) => ({ name: n, version: sys.get(n)!.version })),
          files: SYSTEM_FILES,
          checkedAt: new Date().toISOString(),
        },
      };
      writeManifest(opts.paths.prefixDir, manifest);
      return manifest;
    };

    for (const set of PREFIX_SETS) {
      const records = resolved.get(set.name)!;
      const fingerprint = setFingerprint(set, records);
      const version = records.find((r) => r.name === set.roots[0]!.name)!.version;
      const row = (state: "cached" | "installed") => {
        rows.push({ set: set.name, version, suite: set.suite, state });
        log(`${pad(set.name, 20)}${pad(version, 24)}${pad(set.suite, 8)}${state}`);
      };
      if (isSetCurrent(sets[set.name], fingerprint)) {
        row("cached");
        continue;
      }
      await fetchDebs(set, records, apts.get(set.suite)!, debDir, arch, log);
      const root = await unpackSet(set, records, opts, debDir);
      const files = Object.fromEntries(
        Object.entries(set.files).map(([role, rel]) => [role, join(root, rel)]),
      );
      try {
        await verifySet(set, files);
      } catch (err) {
        removeTree(root);
        delete sets[set.name];
        save();
        throw err;
      }
      sets[set.name] = {
        suite: set.suite,
        version,
        fingerprint,
        root,
        packages: records.map((r) => ({ name: r.name, version: r.version, sha256: r.sha256 })),
        files,
        installedAt: new Date().toISOString(),
      };
      save();
      row("installed");
    }
    // Sets the recipe no longer names are removed, tree and manifest entry.
    for (const name of Object.keys(sets)) {
      if (PREFIX_SETS.some((s) => s.name === name)) continue;
      removeTree(join(opts.paths.prefixDir, name));
      delete sets[name];
    }
    return { manifest: save(), rows };
  });
}
