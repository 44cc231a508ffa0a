// The shim's build: a CommonJS bundle (a Node SEA runs CommonJS only) and, from it, the single
// executable `dist/containerd-shim-beetroot-v1` (node 20's --experimental-sea-config + postject).
// The bundle alone also runs: `node dist/containerd-shim-beetroot-v1.cjs -v`.
// BEETROOT_SKIP_SEA=1 skips the executable for quick development builds.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const require = createRequire(import.meta.url);

const OUT = "dist/containerd-shim-beetroot-v1";
const BUNDLE = `${OUT}.cjs`;
const SENTINEL = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

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
    build.onLoad({ filter: /classic-level[\\/]binding\.js$/ }, () => ({
      contents: `module.exports = require(${JSON.stringify(loader)}).loadNativeAddon("classic-level.node", ${JSON.stringify(addons["classic-level.node"])});`,
      loader: "js",
    }));
  },
};

function buildSea() {
  const assets = nativeAddons();
  const blob = `${OUT}.blob`;
  const config = `${OUT}.sea-config.json`;
  writeFileSync(
    join(root, config),
    JSON.stringify(
      { main: BUNDLE, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, assets },
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
  try {
    execFileSync("strip", ["--strip-all", tmp], { stdio: "inherit" });
  } catch {
    console.warn("strip not found: the shim executable keeps node's debug info");
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
  renameSync(tmp, join(root, OUT));
  rmSync(join(root, blob), { force: true });
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
  banner: { js: "#!/usr/bin/env node" },
  plugins: [addonPlugin, seaPlugin],
};
