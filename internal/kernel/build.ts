import { spawn } from "node:child_process";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import type { BeetrootPaths } from "../config/paths.ts";
import { loadHostDeps } from "../hostdeps/index.ts";
import {
  findKernel,
  type KernelArtifact,
  type KernelInputs,
  type KernelMeta,
  kernelDir,
  kernelFingerprint,
  markCurrent,
} from "./artifact.ts";
import { checkFragment, describeMismatch, parseKconfig } from "./kconfig.ts";
import { type KernelPatch, loadPatches, patchSetDigest } from "./patches.ts";

/**
 * `beetroot build kernel`: Linux 6.12 from Debian's linux-source-6.12 with beetroot's patches
 * (assets/kernel/patches), configured as
 * `tinyconfig` + `kvm_guest.config` + assets/kernel/beetroot.config, everything built in, and
 * shipped as an uncompressed, debug-stripped PVH `vmlinux` (what QEMU's microvm boots fastest).
 *
 * Work trees live in `<cacheDir>/kernel/`: `src/<pkgver>/` (the unpacked tarball, shared by all
 * configs of that version), `out/<pkgver>/` (the kbuild O= directory, kept so a config change
 * rebuilds only what it touches) and `logs/`. The finished kernel goes to
 * `<assetsDir>/kernel/<fingerprint>/`.
 */

export class KernelBuildError extends Error {
  constructor(
    readonly what: string,
    readonly remedy: string,
  ) {
    super(`${what}\n  → ${remedy}`);
    this.name = "KernelBuildError";
  }
}

export interface BuildKernelOptions {
  readonly paths: BeetrootPaths;
  /** Defaults to assets/kernel/beetroot.config of the checkout this code runs from. */
  readonly fragmentPath?: string;
  readonly jobs?: number;
  /** Rebuild even when an artifact with the same fingerprint exists. */
  readonly force?: boolean;
  readonly log: (line: string) => void;
}

export interface BuildKernelResult {
  readonly artifact: KernelArtifact;
  readonly cached: boolean;
  readonly logFile?: string;
}

/** Walks up from this module (internal/kernel/ in the checkout, dist/ when bundled) to the repo's fragment. */
export function defaultFragmentPath(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const candidate = join(dir, "assets", "kernel", "beetroot.config");
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new KernelBuildError(
        `assets/kernel/beetroot.config not found above ${from}`,
        "run from a beetroot checkout or pass --fragment PATH",
      );
    }
    dir = parent;
  }
}

async function gccVersion(): Promise<string> {
  const r = await execa("gcc", ["--version"], { reject: false, stdin: "ignore" });
  const first = String(r.stdout).split("\n")[0]?.trim();
  if (r.exitCode !== 0 || !first) {
    throw new KernelBuildError(
      "gcc is not installed or does not run",
      "run `npx beetroot setup` (installs build-essential)",
    );
  }
  return first;
}

const KVM_GUEST = "kernel/configs/kvm_guest.config";

interface SourceTree {
  readonly dir: string;
  readonly outDir: string;
  readonly stageDir: string;
  readonly logsDir: string;
}

function sourceTree(paths: BeetrootPaths, pkgVersion: string): SourceTree {
  const base = join(paths.cacheDir, "kernel");
  return {
    dir: join(base, "src", pkgVersion, "linux-source-6.12"),
    outDir: join(base, "out", pkgVersion),
    stageDir: join(base, "config-stage", pkgVersion),
    logsDir: join(base, "logs"),
  };
}

const extractedStamp = (tree: SourceTree) => join(tree.dir, ".beetroot-extracted");

/** What the unpacked tree holds: the tarball, and the patches applied to it. */
interface SourceStamp {
  readonly tarball: string;
  readonly patches: string;
  /** Files those patches changed. */
  readonly files: readonly string[];
}

function readStamp(tree: SourceTree): SourceStamp | undefined {
  if (!existsSync(extractedStamp(tree))) return undefined;
  const text = readFileSync(extractedStamp(tree), "utf8");
  try {
    return JSON.parse(text) as SourceStamp;
  } catch {
    // Trees unpacked before patches existed: a line naming the tarball.
    return { tarball: text.trim(), patches: patchSetDigest([]), files: [] };
  }
}

/**
 * The unpacked source with exactly `patches` applied. A different patch set unpacks the tree
 * again; tar restores the archive's timestamps, so only files either set changed (touched here,
 * or written by patch) are newer than their objects and the kept O= directory rebuilds just those.
 */
async function ensureSource(
  tree: SourceTree,
  tarball: string,
  patches: readonly KernelPatch[],
  log: (l: string) => void,
): Promise<void> {
  const want = patchSetDigest(patches);
  const had = readStamp(tree);
  if (had?.tarball === tarball && had.patches === want) return;
  const parent = dirname(tree.dir);
  rmSync(parent, { recursive: true, force: true });
  mkdirSync(parent, { recursive: true });
  log(`unpacking ${tarball} (~10 s)`);
  const r = await execa("tar", ["-xf", tarball, "-C", parent], { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0 || !existsSync(join(tree.dir, "Makefile"))) {
    throw new KernelBuildError(
      `unpacking ${tarball} failed: ${String(r.stderr).trim()}`,
      "re-run `npx beetroot setup` to restore the source package",
    );
  }
  const now = new Date();
  for (const file of had?.files ?? []) {
    if (existsSync(join(tree.dir, file))) utimesSync(join(tree.dir, file), now, now);
  }
  for (const p of patches) {
    log(`applying ${p.name}`);
    const applied = await execa("patch", ["-p1", "--forward", "--batch", "-i", p.path], {
      cwd: tree.dir,
      reject: false,
      all: true,
      stdin: "ignore",
    });
    if (applied.exitCode !== 0) {
      rmSync(parent, { recursive: true, force: true });
      throw new KernelBuildError(
        `${p.path} does not apply to ${tarball}:\n    ${String(applied.all).trim().split("\n").join("\n    ")}`,
        "refresh the patch against this linux-source version",
      );
    }
  }
  const stamp: SourceStamp = { tarball, patches: want, files: patches.flatMap((p) => p.files) };
  writeFileSync(extractedStamp(tree), `${JSON.stringify(stamp)}\n`);
}

async function readKvmGuestConfig(tree: SourceTree, tarball: string): Promise<string> {
  const unpacked = join(tree.dir, KVM_GUEST);
  if (existsSync(extractedStamp(tree))) return readFileSync(unpacked, "utf8");
  const r = await execa("tar", ["-xOf", tarball, `linux-source-6.12/${KVM_GUEST}`], {
    reject: false,
    stdin: "ignore",
  });
  if (r.exitCode !== 0)
    throw new KernelBuildError(`cannot read ${KVM_GUEST} from ${tarball}`, "re-run `npx beetroot setup`");
  return String(r.stdout);
}

/** Runs make with every output line going to the log file and progress lines to `log`. */
async function runMake(
  args: readonly string[],
  cwd: string,
  logFile: string,
  progress: { expected?: number; log: (l: string) => void; label: string },
): Promise<{ code: number; steps: number; tail: string[] }> {
  const out = createWriteStream(logFile, { flags: "a" });
  out.write(`$ make ${args.join(" ")}\n`);
  const child = spawn("make", [...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, KBUILD_BUILD_USER: "beetroot", KBUILD_BUILD_HOST: "beetroot", LC_ALL: "C" },
  });
  const started = Date.now();
  let steps = 0;
  let lastReport = started;
  let lastLine = "";
  const tail: string[] = [];
  const report = () => {
    const secs = Math.round((Date.now() - started) / 1000);
    const pct = progress.expected ? ` ≈${Math.min(99, Math.floor((100 * steps) / progress.expected))}%` : "";
    progress.log(
      `${progress.label}: ${steps} steps${pct}, ${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, "0")}s — ${lastLine}`,
    );
    lastReport = Date.now();
  };
  const onData = (chunk: Buffer) => {
    out.write(chunk);
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      tail.push(line);
      if (tail.length > 40) tail.shift();
      // kbuild's quiet output: two spaces, a command tag (CC, LD, AR, GEN, …), the target.
      if (/^ {2}[A-Z0-9_]+ +\S/.test(line)) {
        steps++;
        lastLine = line.trim().replace(/\s+/g, " ");
      }
    }
    if (Date.now() - lastReport > 20_000) report();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const code = await new Promise<number>((resolvePromise, reject) => {
    child.on("error", reject);
    child.on("close", (c) => resolvePromise(c ?? -1));
  });
  await new Promise<void>((r) => out.end(r));
  if (steps > 0) report();
  return { code, steps, tail };
}

async function configure(
  tree: SourceTree,
  fragmentPath: string,
  logFile: string,
  log: (l: string) => void,
): Promise<string> {
  rmSync(tree.stageDir, { recursive: true, force: true });
  mkdirSync(tree.stageDir, { recursive: true });
  const O = `O=${tree.stageDir}`;
  const quiet = { log, label: "kconfig" };
  const steps: [string, () => Promise<{ code: number; tail: string[] }>][] = [
    ["make tinyconfig", () => runMake(["-s", O, "tinyconfig"], tree.dir, logFile, quiet)],
    [
      "merge_config.sh",
      async () => {
        const r = await execa(
          "scripts/kconfig/merge_config.sh",
          ["-m", "-O", tree.stageDir, join(tree.stageDir, ".config"), KVM_GUEST, fragmentPath],
          { cwd: tree.dir, reject: false, all: true, stdin: "ignore" },
        );
        writeFileSync(logFile, String(r.all), { flag: "a" });
        return { code: r.exitCode ?? -1, tail: String(r.all).split("\n").slice(-20) };
      },
    ],
    ["make olddefconfig", () => runMake(["-s", O, "olddefconfig"], tree.dir, logFile, quiet)],
  ];
  for (const [name, step] of steps) {
    const r = await step();
    if (r.code !== 0)
      throw new KernelBuildError(`${name} failed:\n    ${r.tail.join("\n    ")}`, `full log: ${logFile}`);
  }
  const finalConfig = readFileSync(join(tree.stageDir, ".config"), "utf8");
  const mismatches = checkFragment(
    parseKconfig(readFileSync(fragmentPath, "utf8")),
    parseKconfig(finalConfig),
  );
  if (mismatches.length > 0) {
    throw new KernelBuildError(
      `${mismatches.length} option(s) of ${fragmentPath} did not survive into the final .config:\n    ${mismatches.map(describeMismatch).join("\n    ")}`,
      "enable the options they depend on in the fragment (see `make menuconfig` → search), or remove them",
    );
  }
  return finalConfig;
}

/** An ELF note owned by "Xen" of type XEN_ELFNOTE_PHYS32_ENTRY (18) is what makes a vmlinux PVH-bootable. */
async function hasPvhNote(vmlinux: string): Promise<boolean> {
  const r = await execa("readelf", ["--notes", "--wide", vmlinux], { reject: false, stdin: "ignore" });
  return String(r.stdout)
    .split("\n")
    .some((l) => /^\s*Xen\s/.test(l) && /(0x00000012|PHYS32_ENTRY)/i.test(l));
}

interface BuildStats {
  readonly steps: number;
}

export async function buildKernel(opts: BuildKernelOptions): Promise<BuildKernelResult> {
  const { log, paths } = opts;
  const deps = loadHostDeps(paths);
  const fragmentPath = resolve(opts.fragmentPath ?? defaultFragmentPath());
  if (!existsSync(fragmentPath))
    throw new KernelBuildError(`fragment ${fragmentPath} does not exist`, "pass an existing --fragment PATH");
  const fragment = readFileSync(fragmentPath, "utf8");
  const patches = loadPatches(join(dirname(fragmentPath), "patches"));
  const tree = sourceTree(paths, deps.linuxSourceVersion);
  const inputs: KernelInputs = {
    sourcePackageVersion: deps.linuxSourceVersion,
    fragment,
    patches: patchSetDigest(patches),
    kvmGuestConfig: await readKvmGuestConfig(tree, deps.linuxSourceTarball),
    gccVersion: await gccVersion(),
  };
  const fingerprint = kernelFingerprint(inputs);
  const existing = findKernel(paths, fingerprint);
  if (existing && !opts.force) {
    markCurrent(paths, fingerprint);
    return { artifact: existing, cached: true };
  }

  const started = Date.now();
  mkdirSync(tree.logsDir, { recursive: true });
  const logFile = join(tree.logsDir, `build-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  log(
    `building Linux ${deps.linuxUpstreamVersion} (${deps.linuxSourceVersion}), fingerprint ${fingerprint.slice(0, 12)}; log: ${logFile}`,
  );
  await ensureSource(tree, deps.linuxSourceTarball, patches, log);
  const finalConfig = await configure(tree, fragmentPath, logFile, log);
  log(`config: ${parseKconfig(fragment).size} fragment options all present in the final .config`);

  mkdirSync(tree.outDir, { recursive: true });
  const outConfig = join(tree.outDir, ".config");
  // Copy only when changed: an untouched .config keeps kbuild's incremental state valid.
  if (!existsSync(outConfig) || readFileSync(outConfig, "utf8") !== finalConfig)
    writeFileSync(outConfig, finalConfig);

  const statsFile = join(paths.cacheDir, "kernel", "build-stats.json");
  const expected = existsSync(statsFile)
    ? (JSON.parse(readFileSync(statsFile, "utf8")) as BuildStats).steps
    : undefined;
  // One job more than cores: with exactly N, ~12% of 2 cores sat idle while make waited on
  // process start-up and I/O (176% CPU over a cold build here).
  const jobs = opts.jobs ?? availableParallelism() + 1;
  log(`compiling with ${jobs} job(s)${expected ? "" : " (first build: ~12 min on 2 cores)"}`);
  // Only a build from an empty O= directory says how many steps a full build takes.
  const fresh = !existsSync(join(tree.outDir, "vmlinux"));
  const made = await runMake([`O=${tree.outDir}`, `-j${jobs}`, "vmlinux"], tree.dir, logFile, {
    ...(expected !== undefined ? { expected } : {}),
    log,
    label: "kernel",
  });
  if (made.code !== 0) {
    const errors = made.tail.filter((l) => /error|Error|\*\*\*/.test(l)).slice(-12);
    throw new KernelBuildError(
      `kernel build failed (make exit ${made.code}):\n    ${(errors.length ? errors : made.tail.slice(-12)).join("\n    ")}`,
      `full log: ${logFile}`,
    );
  }
  // Remember the size of a full build for the next cold build's percentage.
  if (fresh) writeFileSync(statsFile, JSON.stringify({ steps: made.steps }));

  const built = join(tree.outDir, "vmlinux");
  const release = readFileSync(join(tree.outDir, "include/config/kernel.release"), "utf8").trim();
  const dest = kernelDir(paths, fingerprint);
  const staging = `${dest}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const strip = await execa("strip", ["--strip-debug", "-o", join(staging, "vmlinux"), built], {
    reject: false,
    stdin: "ignore",
  });
  if (strip.exitCode !== 0)
    throw new KernelBuildError(`strip failed: ${String(strip.stderr).trim()}`, "check binutils is installed");
  if (!(await hasPvhNote(join(staging, "vmlinux")))) {
    throw new KernelBuildError(
      "the built vmlinux has no PVH entry note (Xen PHYS32_ENTRY)",
      "CONFIG_PVH=y must be in the fragment",
    );
  }
  writeFileSync(join(staging, "config"), finalConfig);
  const meta: KernelMeta = {
    fingerprint,
    version: release,
    sourcePackageVersion: deps.linuxSourceVersion,
    gccVersion: inputs.gccVersion,
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((Date.now() - started) / 1000),
    vmlinuxBytes: statSync(join(staging, "vmlinux")).size,
    patches: patches.map((p) => p.name),
  };
  writeFileSync(join(staging, "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
  rmSync(dest, { recursive: true, force: true });
  renameSync(staging, dest);
  markCurrent(paths, fingerprint);
  const artifact = findKernel(paths, fingerprint);
  if (!artifact) throw new Error(`internal: ${dest} vanished right after it was written`);
  return { artifact, cached: false, logFile };
}
