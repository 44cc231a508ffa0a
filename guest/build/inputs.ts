/**
 * The guest image's inputs, found and hashed: Bun (npm `bun`), the vminitd bundle, the self-test
 * sources and the compiler that builds them, the guest userspace tree `beetroot setup` unpacked
 * (crun + trixie glibc), mkfs.erofs and the recipe. The fingerprint is a hash of all of them, so an
 * unchanged set of inputs finds its image in the cache.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import {
  BUN_BYTECODE_ARGS,
  ETC_FILES,
  GUEST_RECIPE_VERSION,
  IMAGE_PATHS,
  MKFS_OPTIONS,
  MOUNT_POINT_DIRS,
  NATIVE_PROGRAMS,
  SYMLINKS,
  USERSPACE_EXCLUDES,
} from "./recipe.ts";
import { excludeByPatterns, hashTree, sha256File } from "./tree.ts";

export class GuestBuildError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(hint ? `${message} (${hint})` : message);
    this.name = "GuestBuildError";
  }
}

/** The checkout this code runs from: the nearest directory up with beetroot's package.json. */
export function projectRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "beetroot") return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir)
      throw new GuestBuildError(`no beetroot checkout above ${from}`, "run beetroot from its checkout");
    dir = up;
  }
}

export interface FileInput {
  readonly path: string;
  readonly sha256: string;
}

export interface GuestInputs {
  readonly bun: FileInput & { readonly version: string };
  /** The bundle as Bun loads it (CommonJS wrapper) and its JavaScriptCore bytecode (`<path>.jsc`). */
  readonly vminitd: FileInput & { readonly bytecode: FileInput };
  /** C sources (init launcher, vminitd's addon, self-tests), their flags and where they go in the image. */
  readonly programs: readonly (FileInput & {
    readonly name: string;
    readonly dest: string;
    readonly cflags: readonly string[];
  })[];
  /** First line of `gcc --version` and a hash of the kernel UAPI headers the programs include. */
  readonly compiler: { readonly gcc: string; readonly gccVersion: string; readonly uapiSha256: string };
  readonly userspace: {
    readonly root: string;
    readonly sha256: string;
    readonly crunVersion: string;
    readonly libcVersion: string;
  };
  readonly mkfs: { readonly path: string; readonly version: string };
}

const UAPI_HEADERS = ["/usr/include/linux/android/binder.h", "/usr/include/linux/android/binderfs.h"];

async function output(file: string, args: string[], what: string, hint: string): Promise<string> {
  const r = await execa(file, args, { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0 || r.failed) {
    const detail = (r.stderr || r.stdout || r.shortMessage || "").toString().trim().split("\n")[0];
    throw new GuestBuildError(`${what} failed: ${detail}`, hint);
  }
  return `${r.stdout}`.trim();
}

export function bunBinary(root: string): string {
  // The npm package's postinstall puts the platform binary here (node_modules/bun/bin/bun.exe).
  const path = join(root, "node_modules", "bun", "bin", "bun.exe");
  if (!existsSync(path)) {
    throw new GuestBuildError(`Bun binary ${path} is missing`, "run `npm install` (bun is a devDependency)");
  }
  return path;
}

/** Bundles vminitd with the project's own build script and returns the bundle. */
export async function bundleVminitd(root: string): Promise<string> {
  await output(
    process.execPath,
    [join(root, "scripts", "build.mjs"), "vminitd"],
    "bundling vminitd",
    "see the esbuild error above",
  );
  const path = join(root, "dist", "vminitd.js");
  if (!existsSync(path)) throw new GuestBuildError(`${path} was not produced by scripts/build.mjs`);
  return path;
}

/**
 * Compiles the vminitd bundle to JavaScriptCore bytecode with the guest's own Bun (bytecode is
 * only valid for the Bun version that wrote it). Returns `<outDir>/vminitd.js` (the source Bun
 * keeps for functions and stack traces) and `<outDir>/vminitd.js.jsc`.
 */
export async function compileVminitdBytecode(
  bun: string,
  bundle: string,
  outDir: string,
): Promise<{ js: string; jsc: string }> {
  rmSync(outDir, { recursive: true, force: true });
  await output(
    bun,
    [...BUN_BYTECODE_ARGS, `--outdir=${outDir}`, bundle],
    "compiling vminitd to bytecode",
    "see Bun's error above",
  );
  const js = join(outDir, basename(bundle));
  const jsc = `${js}.jsc`;
  for (const f of [js, jsc]) {
    if (!existsSync(f))
      throw new GuestBuildError(`${f} was not produced by \`bun ${BUN_BYTECODE_ARGS.join(" ")}\``);
  }
  // Bun only uses the .jsc when the source carries its marker; without it the bytecode is dead weight.
  if (!readFileSync(js, "utf8").startsWith("// @bun @bytecode")) {
    throw new GuestBuildError(`${js} lacks Bun's "// @bun @bytecode" marker: Bun would ignore the bytecode`);
  }
  return { js, jsc };
}

export interface UserspaceDeps {
  readonly root: string;
  readonly crunVersion: string;
  readonly libcVersion: string;
  readonly mkfsErofs: string;
}

export async function gatherInputs(root: string, deps: UserspaceDeps): Promise<GuestInputs> {
  const bunPath = bunBinary(root);
  const bunVersion = await output(
    bunPath,
    ["--version"],
    "running Bun",
    "the npm bun package must match this CPU",
  );
  const bundle = await bundleVminitd(root);
  const vminitd = await compileVminitdBytecode(bunPath, bundle, join(root, "dist", "vminitd-bytecode"));
  for (const h of UAPI_HEADERS) {
    if (!existsSync(h))
      throw new GuestBuildError(`${h} is missing`, "install linux-libc-dev (`npx beetroot setup`)");
  }
  const gccVersion =
    (await output("gcc", ["--version"], "gcc --version", "install build-essential")).split("\n")[0] ?? "";
  const uapi = createHash("sha256");
  for (const h of UAPI_HEADERS) uapi.update(readFileSync(h));
  const mkfsVersion = await output(deps.mkfsErofs, ["-V"], "mkfs.erofs -V", "run `npx beetroot setup`");
  return {
    bun: { path: bunPath, sha256: sha256File(bunPath), version: bunVersion },
    vminitd: {
      path: vminitd.js,
      sha256: sha256File(vminitd.js),
      bytecode: { path: vminitd.jsc, sha256: sha256File(vminitd.jsc) },
    },
    programs: NATIVE_PROGRAMS.map((t) => {
      const path = join(root, t.source);
      if (!existsSync(path)) throw new GuestBuildError(`C source ${path} is missing`);
      return { name: t.name, dest: t.dest, cflags: t.cflags, path, sha256: sha256File(path) };
    }),
    compiler: { gcc: "gcc", gccVersion, uapiSha256: uapi.digest("hex") },
    userspace: {
      root: deps.root,
      sha256: hashTree(deps.root, excludeByPatterns(USERSPACE_EXCLUDES)),
      crunVersion: deps.crunVersion,
      libcVersion: deps.libcVersion,
    },
    mkfs: {
      path: deps.mkfsErofs,
      version: (mkfsVersion.split("\n")[0] ?? "").replace(/^mkfs\.erofs\s*/, ""),
    },
  };
}

/** The hash of everything that decides the image's bytes (paths on this host do not). */
export function guestFingerprint(inputs: GuestInputs): string {
  return createHash("sha256")
    .update(
      JSON.stringify({
        recipe: GUEST_RECIPE_VERSION,
        layout: { IMAGE_PATHS, MOUNT_POINT_DIRS, SYMLINKS, ETC_FILES },
        excludes: USERSPACE_EXCLUDES.map(String),
        mkfs: { options: MKFS_OPTIONS, version: inputs.mkfs.version },
        bun: inputs.bun.sha256,
        vminitd: inputs.vminitd.sha256,
        vminitdBytecode: { args: BUN_BYTECODE_ARGS, sha256: inputs.vminitd.bytecode.sha256 },
        programs: inputs.programs.map((t) => [t.name, t.dest, t.sha256, t.cflags]),
        compiler: [inputs.compiler.gccVersion, inputs.compiler.uapiSha256],
        userspace: inputs.userspace.sha256,
      }),
    )
    .digest("hex");
}

/** A UUID for the filesystem, derived from the fingerprint so rebuilding gives the same bytes. */
export function fingerprintUuid(fingerprint: string): string {
  const h = fingerprint.slice(0, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
