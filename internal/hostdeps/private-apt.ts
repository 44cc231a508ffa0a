import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DebianMirror } from "./apt-sources.ts";
import { SetupError } from "./errors.ts";
import { run } from "./exec.ts";
import { type PackagesIndex, parsePackagesIndex } from "./packages-index.ts";

/**
 * An apt configuration of our own, one per suite, under `<cacheDir>/apt/<suite>/`: its own
 * sources, lists, caches and an empty dpkg status file. It shares only the machine's keyrings
 * (signature checks stay on) and its apt.conf.d (proxies keep working). Nothing it does touches
 * the system's package database or its apt lists.
 */
export interface PrivateApt {
  readonly suite: string;
  readonly dir: string;
  /** Changes whenever the lists are re-fetched (the stamp's mtime and the sources it records). */
  listsIdentity(): string;
  /** Age of the lists in hours, or undefined when never fetched or the sources changed. */
  listsAgeHours(): number | undefined;
  update(onLine: (line: string) => void): Promise<void>;
  loadIndex(): Promise<PackagesIndex>;
  /** Downloads exact `name=version` pairs into `destDir` (signature-checked by apt). */
  download(
    pins: readonly { name: string; version: string }[],
    destDir: string,
    onLine: (line: string) => void,
  ): Promise<void>;
}

function sourcesFile(mirror: DebianMirror, suite: string): string {
  const lines = [
    "Types: deb",
    `URIs: ${mirror.uri}`,
    `Suites: ${suite}`,
    "Components: main",
    "Targets: Packages",
  ];
  if (mirror.signedBy !== undefined) {
    // Multi-line values (an inline key) continue with a leading space; empty lines become " .".
    const [first, ...rest] = mirror.signedBy.split("\n");
    lines.push(`Signed-By: ${first}`, ...rest.map((l) => (l === "" ? " ." : ` ${l}`)));
  }
  return `# written by beetroot setup from ${mirror.origin}; do not edit\n${lines.join("\n")}\n`;
}

function aptConf(dir: string, arch: string): string {
  return [
    `Dir::State "${dir}/state";`,
    `Dir::State::status "${dir}/state/status";`,
    `Dir::Cache "${dir}/cache";`,
    `Dir::Cache::pkgcache "";`,
    `Dir::Cache::srcpkgcache "";`,
    `Dir::Etc::SourceList "${dir}/sources.list";`,
    `Dir::Etc::SourceParts "${dir}/sources.list.d";`,
    `Dir::Etc::Preferences "${dir}/preferences";`,
    `Dir::Etc::PreferencesParts "${dir}/preferences.d";`,
    `APT::Architecture "${arch}";`,
    `APT::Architectures { "${arch}"; };`,
    `Acquire::Languages "none";`,
    `APT::Get::List-Cleanup "true";`,
    "",
  ].join("\n");
}

const apt = (dir: string) => ["-c", join(dir, "apt.conf")];

function failedFetches(output: string): string[] {
  return output
    .split("\n")
    .filter(
      (l) => /^(E:|W: Failed to fetch|Err:)/.test(l.trim()) || /^W: .*(not signed|NO_PUBKEY|invalid)/.test(l),
    );
}

export function createPrivateApt(opts: {
  cacheDir: string;
  mirror: DebianMirror;
  suite: string;
  arch: string;
}): PrivateApt {
  const dir = join(opts.cacheDir, "apt", opts.suite);
  const sources = sourcesFile(opts.mirror, opts.suite);
  const stamp = join(dir, "lists.stamp");

  const prepare = () => {
    for (const d of ["state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"]) {
      mkdirSync(join(dir, d), { recursive: true });
    }
    writeFileSync(join(dir, "apt.conf"), aptConf(dir, opts.arch));
    writeFileSync(join(dir, "sources.list"), "");
    writeFileSync(join(dir, "sources.list.d", "beetroot.sources"), sources);
    if (!existsSync(join(dir, "state/status"))) writeFileSync(join(dir, "state/status"), "");
  };

  const packagesFiles = async (): Promise<string[]> => {
    const r = await run("apt-get", [
      ...apt(dir),
      "indextargets",
      "--format",
      "$(FILENAME)",
      "Created-By: Packages",
    ]);
    if (r.exitCode !== 0)
      throw new Error(`apt-get indextargets failed for ${opts.suite}: ${r.stderr.trim()}`);
    // indextargets names the uncompressed file; with Acquire::GzipIndexes the stored one has a suffix.
    const found: string[] = [];
    for (const base of r.stdout.split("\n").filter((l) => l.trim() !== "")) {
      for (const suffix of ["", ".lz4", ".gz", ".xz", ".zst", ".bz2", ".lzma"]) {
        if (existsSync(base + suffix)) {
          found.push(base + suffix);
          break;
        }
      }
    }
    return found;
  };

  return {
    suite: opts.suite,
    dir,
    listsIdentity() {
      if (!existsSync(stamp)) return "none";
      return `${statSync(stamp).mtimeMs}:${readFileSync(stamp, "utf8")}`;
    },
    listsAgeHours() {
      if (!existsSync(stamp)) return undefined;
      if (readFileSync(stamp, "utf8") !== sources) return undefined;
      return (Date.now() - statSync(stamp).mtimeMs) / 3_600_000;
    },
    async update(onLine) {
      prepare();
      const r = await run("apt-get", [...apt(dir), "-q", "update"], { onLine });
      const output = `${r.stdout}\n${r.stderr}`;
      const failures = failedFetches(output);
      if (r.exitCode !== 0 || failures.length > 0) {
        throw new SetupError(
          `apt-get update of ${opts.suite} from ${opts.mirror.uri} failed (exit ${r.exitCode}):\n    ${(failures.length ? failures : output.trim().split("\n").slice(-6)).join("\n    ")}`,
          `check that the mirror named in ${opts.mirror.origin} is reachable and carries ${opts.suite} ` +
            `(apt config: ${join(dir, "apt.conf")}); then run \`npx beetroot setup --refresh\``,
        );
      }
      if ((await packagesFiles()).length === 0) {
        throw new SetupError(
          `apt-get update of ${opts.suite} succeeded but left no Packages index under ${join(dir, "state/lists")}`,
          `check that ${opts.mirror.uri} serves dists/${opts.suite}/main/binary-${opts.arch}/`,
        );
      }
      writeFileSync(stamp, sources);
    },
    async loadIndex() {
      const files = await packagesFiles();
      if (files.length === 0) {
        throw new SetupError(
          `no ${opts.suite} Packages index in ${dir}`,
          "run `npx beetroot setup --refresh`",
        );
      }
      let text = "";
      for (const f of files) {
        const r = await run("/usr/lib/apt/apt-helper", ["cat-file", f], { maxBuffer: 512 * 1024 * 1024 });
        if (r.exitCode !== 0) throw new Error(`apt-helper cat-file ${f} failed: ${r.stderr.trim()}`);
        text += `${r.stdout}\n\n`;
      }
      return parsePackagesIndex(text);
    },
    async download(pins, destDir, onLine) {
      prepare();
      mkdirSync(destDir, { recursive: true });
      // apt downloads as the unprivileged `_apt` user when it can write the target directory;
      // handing it the directory keeps that sandbox instead of apt falling back to root.
      const aptUser = readFileSync("/etc/passwd", "utf8")
        .split("\n")
        .find((l) => l.startsWith("_apt:"));
      if (aptUser) chownSync(destDir, Number(aptUser.split(":")[2]), 0);
      const r = await run(
        "apt-get",
        [...apt(dir), "-q", "download", ...pins.map((p) => `${p.name}=${p.version}`)],
        {
          cwd: destDir,
          onLine,
        },
      );
      if (r.exitCode !== 0) {
        throw new SetupError(
          `apt-get download from ${opts.suite} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split("\n").slice(-4).join(" | ")}`,
          "the mirror may have moved on since the lists were fetched: run `npx beetroot setup --refresh`",
        );
      }
    },
  };
}
