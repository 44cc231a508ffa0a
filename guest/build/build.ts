/**
 * `beetroot build guest`: stages the guest root filesystem and packs it into an uncompressed,
 * read-only EROFS image, cached by the fingerprint of its inputs.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import type { BeetrootPaths } from "../../internal/config/paths.ts";
import type { ImageManifest } from "../vminitd/image-manifest.ts";
import {
  type GuestImageArtifact,
  guestAssetsDir,
  imageDir,
  markCurrent,
  readImage,
  writeMeta,
} from "./artifact.ts";
import { fingerprintUuid, GuestBuildError, type GuestInputs, guestFingerprint } from "./inputs.ts";
import {
  ETC_FILES,
  IMAGE_PATHS,
  MKFS_OPTIONS,
  MOUNT_POINT_DIRS,
  SYMLINKS,
  USERSPACE_EXCLUDES,
} from "./recipe.ts";
import { copyTree, excludeByPatterns, walkTree } from "./tree.ts";

export interface BuildResult {
  readonly artifact: GuestImageArtifact;
  readonly cached: boolean;
}

export interface BuildOptions {
  readonly paths: BeetrootPaths;
  readonly inputs: GuestInputs;
  readonly force: boolean;
  readonly log: (line: string) => void;
  /** Images kept besides the new one (running VMs may still use an older image). */
  readonly keepPrevious?: number;
}

function place(stage: string, rel: string, from: string, mode: number): void {
  const to = join(stage, rel);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, mode);
}

async function compile(source: string, cflags: readonly string[], out: string): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  rmSync(out, { force: true });
  const r = await execa("gcc", [...cflags, "-o", out, source], { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0) throw new GuestBuildError(`compiling ${source} failed:\n${r.stderr}`);
  chmodSync(out, 0o755);
}

/** Lays out the root filesystem in `stage` (an empty directory). */
export async function stageRootfs(stage: string, inputs: GuestInputs): Promise<void> {
  copyTree(inputs.userspace.root, stage, excludeByPatterns(USERSPACE_EXCLUDES));
  for (const d of MOUNT_POINT_DIRS) {
    mkdirSync(join(stage, d.path), { recursive: true });
    chmodSync(join(stage, d.path), d.mode);
  }
  for (const l of SYMLINKS) {
    rmSync(join(stage, l.path), { force: true });
    symlinkSync(l.target, join(stage, l.path));
  }
  for (const [rel, text] of Object.entries(ETC_FILES)) {
    writeFileSync(join(stage, rel), text);
    chmodSync(join(stage, rel), 0o644);
  }
  place(stage, IMAGE_PATHS.bun, inputs.bun.path, 0o755);
  place(stage, IMAGE_PATHS.vminitd, inputs.vminitd.path, 0o644);
  place(stage, `${IMAGE_PATHS.vminitd}.jsc`, inputs.vminitd.bytecode.path, 0o644);
  for (const p of inputs.programs) await compile(p.path, p.cflags, join(stage, p.dest));
  const manifest: ImageManifest = {
    fingerprint: guestFingerprint(inputs),
    bunVersion: inputs.bun.version,
    crunVersion: inputs.userspace.crunVersion,
    libcVersion: inputs.userspace.libcVersion,
  };
  writeFileSync(join(stage, IMAGE_PATHS.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
  chmodSync(join(stage, IMAGE_PATHS.manifest), 0o644);
  // Directories created on the way (usr/lib/beetroot, …) get a fixed mode whatever the umask.
  for (const rel of walkTree(stage)) {
    const p = join(stage, rel);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory() && !MOUNT_POINT_DIRS.some((d) => d.path === rel)) chmodSync(p, 0o755);
  }
}

function treeBytes(root: string): number {
  let n = 0;
  for (const rel of walkTree(root)) {
    const st = statSync(join(root, rel), { throwIfNoEntry: false });
    if (st?.isFile()) n += st.size;
  }
  return n;
}

export async function mkfsErofs(
  mkfs: string,
  image: string,
  stage: string,
  fingerprint: string,
): Promise<void> {
  const args = [...MKFS_OPTIONS, `-U${fingerprintUuid(fingerprint)}`, "--quiet", image, stage];
  const r = await execa(mkfs, args, { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0) {
    throw new GuestBuildError(
      `${mkfs} ${args.join(" ")} failed (exit ${r.exitCode}):\n${r.stderr || r.stdout}`,
    );
  }
}

/** Removes all but the newest `keep` image directories besides `current`. */
function prune(paths: BeetrootPaths, current: string, keep: number, log: (line: string) => void): void {
  const root = guestAssetsDir(paths);
  const others = readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{64}$/.test(e.name) && e.name !== current)
    .map((e) => ({ name: e.name, mtime: statSync(join(root, e.name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const old of others.slice(keep)) {
    rmSync(join(root, old.name), { recursive: true, force: true });
    log(`removed old guest image ${old.name.slice(0, 12)}`);
  }
}

export async function buildGuestImage(opts: BuildOptions): Promise<BuildResult> {
  const { paths, inputs, log } = opts;
  const fingerprint = guestFingerprint(inputs);
  const existing = readImage(paths, fingerprint);
  if (existing && !opts.force) {
    markCurrent(paths, fingerprint);
    return { artifact: existing, cached: true };
  }

  const started = performance.now();
  const dir = imageDir(paths, fingerprint);
  mkdirSync(dir, { recursive: true });
  const stage = join(dir, `stage.${process.pid}`);
  const tmpImage = join(dir, `guest.erofs.${process.pid}.tmp`);
  rmSync(stage, { recursive: true, force: true });
  try {
    log(`staging the guest root filesystem in ${stage}`);
    await stageRootfs(stage, inputs);
    const stagedBytes = treeBytes(stage);
    log(
      `packing ${(stagedBytes / 1e6).toFixed(1)} MB with mkfs.erofs ${inputs.mkfs.version} (${MKFS_OPTIONS.join(" ")})`,
    );
    await mkfsErofs(inputs.mkfs.path, tmpImage, stage, fingerprint);
    renameSync(tmpImage, join(dir, "guest.erofs"));
    writeMeta(paths, {
      fingerprint,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((performance.now() - started) / 100) / 10,
      imageBytes: statSync(join(dir, "guest.erofs")).size,
      stagedBytes,
      bunVersion: inputs.bun.version,
      crunVersion: inputs.userspace.crunVersion,
      libcVersion: inputs.userspace.libcVersion,
      mkfsVersion: inputs.mkfs.version,
    });
  } finally {
    rmSync(stage, { recursive: true, force: true });
    if (existsSync(tmpImage)) rmSync(tmpImage, { force: true });
  }
  const artifact = readImage(paths, fingerprint);
  if (!artifact) throw new GuestBuildError(`the image in ${dir} is incomplete after building it`);
  markCurrent(paths, fingerprint);
  prune(paths, fingerprint, opts.keepPrevious ?? 1, log);
  return { artifact, cached: false };
}
