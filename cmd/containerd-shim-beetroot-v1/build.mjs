// The shim's build: a CommonJS bundle (a Node SEA runs CommonJS only) and, from it, the single
// executable `dist/containerd-shim-beetroot-v1` (node 20's --experimental-sea-config + postject).
// The bundle alone also runs: `node dist/containerd-shim-beetroot-v1.cjs -v`.
// BEETROOT_SKIP_SEA=1 skips the executable for quick development builds.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(import.meta.url);

const OUT = "dist/containerd-shim-beetroot-v1";
const BUNDLE = `${OUT}.cjs`;
const SENTINEL = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const LOADER = `${OUT}-loader.cjs`;
/** loader.ts's BUNDLE_ASSET. */
const BUNDLE_ASSET = "containerd-shim-beetroot-v1.cjs";

/** Native addons the bundle loads through native-addon.ts instead of node-gyp-build. */
function nativeAddons() {
  const classicLevel = dirname(require.resolve("classic-level/package.json", { paths: [root] }));
  return {
    "classic-level.node": join(classicLevel, "prebuilds", `linux-${process.arch}`, "classic-level.node"),
  };
}

const addonPlugin = {
  name: "beetroot-native-addons",
  setup(build) {
    const addons = nativeAddons();
    const loader = join(here, "native-addon.ts");
    build.onLoad({ filter: /classic-level[\\/]binding\.js$/ }, () => {
      const file = addons["classic-level.node"];
      const sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
      const args = ["classic-level.node", file, sha256].map((a) => JSON.stringify(a)).join(", ");
      return {
        contents: `module.exports = require(${JSON.stringify(loader)}).loadNativeAddon(${args});`,
        loader: "js",
      };
    });
  },
};

/**
 * The executable's main script is loader.ts, which runs the bundle (an asset) through V8 code
 * caches of its own, one per V8 flag set: Node's build-time cache is made without flags, and the
 * server runs with some (loader.ts says why). The bundle's hash names those caches.
 */
function buildLoader() {
  const sha256 = createHash("sha256")
    .update(readFileSync(join(root, BUNDLE)))
    .digest("hex");
  buildSync({
    entryPoints: [join(here, "loader.ts")],
    outfile: join(root, LOADER),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    charset: "ascii",
    define: { BEETROOT_SHIM_BUNDLE_SHA256: JSON.stringify(sha256) },
    logLevel: "warning",
  });
}

function buildSea() {
  buildLoader();
  const assets = { ...nativeAddons(), [BUNDLE_ASSET]: join(root, BUNDLE) };
  const blob = `${OUT}.blob`;
  const config = `${OUT}.sea-config.json`;
  writeFileSync(
    join(root, config),
    JSON.stringify(
      { main: LOADER, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, assets },
      null,
      2,
    ),
  );
  execFileSync(process.execPath, ["--experimental-sea-config", config], { cwd: root, stdio: "inherit" });
  const tmp = join(root, `${OUT}.tmp`);
  rmSync(tmp, { force: true });
  copyFileSync(process.execPath, tmp);
  chmodSync(tmp, 0o755);
  // Symbols and debug info are an eighth of the node binary; N-API addons only need .dynsym, which stays.
  // postject's LIEF warns "Can't find string offset for section name" for every section whose name
  // is not in .shstrtab: the annobin notes of node's build (.gnu.build.attributes, build-policy
  // metadata nothing reads at run time) go, and an empty `.note` gives the note section postject
  // adds for the blob its name.
  try {
    execFileSync("strip", ["--strip-all", "--remove-section=.gnu.build.attributes", tmp], {
      stdio: "inherit",
    });
    execFileSync("objcopy", ["--add-section", ".note=/dev/null", tmp], { stdio: "inherit" });
  } catch {
    console.warn("strip/objcopy not found: the shim executable keeps node's debug info");
  }
  const postject = join(
    dirname(require.resolve("postject/package.json", { paths: [root] })),
    "dist",
    "cli.js",
  );
  execFileSync(process.execPath, [postject, tmp, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SENTINEL], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
  });
  rewriteInPages(tmp, `${tmp}.pages`);
  rmSync(tmp, { force: true });
  renameSync(`${tmp}.pages`, join(root, OUT));
  rmSync(join(root, blob), { force: true });
}

/**
 * Copies `from` to `to` (mode 0755) one 4 KiB write at a time. Linux (ext4 with large folios, 6.x)
 * keeps a file written in big writes as big page-cache folios, and a process mapping the file then
 * maps a whole folio for every page it touches: the shim server started from a fresh build had
 * 9-11 MiB more file-backed RSS than the same bytes read back from disk (docs/shim.md). Small
 * writes leave the page cache as a reboot would: single pages, mapped 64 KiB around each fault.
 */
function rewriteInPages(from, to) {
  const data = readFileSync(from);
  const fd = openSync(to, "w", 0o755);
  try {
    for (let off = 0; off < data.length; off += 4096)
      writeSync(fd, data, off, Math.min(4096, data.length - off));
  } finally {
    closeSync(fd);
  }
  chmodSync(to, 0o755);
}

const seaPlugin = {
  name: "beetroot-shim-sea",
  setup(build) {
    build.onEnd((result) => {
      if (result.errors.length > 0 || process.env.BEETROOT_SKIP_SEA === "1") return;
      buildSea();
    });
  },
};

export const shimTarget = {
  entryPoints: ["cmd/containerd-shim-beetroot-v1/main.ts"],
  outfile: BUNDLE,
  platform: "node",
  format: "cjs",
  target: "node20",
  // Minified: the source stays in the heap of every shim (V8 compiles lazily and needs it), and
  // comments with non-ASCII characters made all of it a two-byte string (1.8 MiB instead of 0.5).
  // Names are not kept (keepNames cost 2.7 MiB of RSS, measured): nothing reads constructor or
  // function names, and a stack trace maps back through the .cjs source map
  // (`node --enable-source-maps dist/containerd-shim-beetroot-v1.cjs`). docs/shim.md has the numbers.
  minify: true,
  charset: "ascii",
  banner: { js: "#!/usr/bin/env node" },
  plugins: [addonPlugin, seaPlugin],
};
