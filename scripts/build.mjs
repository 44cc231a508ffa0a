// Bundles every entry point with esbuild. Each target names its platform: the operator CLI and the
// shim run on Node 20, vminitd runs on Bun inside the guest.
import { build } from "esbuild";
import { shimTarget } from "../cmd/containerd-shim-beetroot-v1/build.mjs";
import { predecodedDescriptorsPlugin } from "./predecoded-descriptors.mjs";

const nodeBanner = [
  "#!/usr/bin/env node",
  'import { createRequire as __beetrootCreateRequire } from "node:module";',
  "const require = __beetrootCreateRequire(import.meta.url);",
].join("\n");

export const targets = [
  {
    entryPoints: ["cmd/beetroot/main.ts"],
    outfile: "dist/beetroot.mjs",
    platform: "node",
    format: "esm",
    target: "node20",
    banner: { js: nodeBanner },
    // level (classic-level) finds its native prebuild relative to its own files: load it from node_modules.
    external: ["level"],
    plugins: [predecodedDescriptorsPlugin],
  },
  {
    // vminitd, the guest's PID 1, run by Bun from the guest image (guest/build copies it there).
    entryPoints: ["guest/vminitd/main.ts"],
    outfile: "dist/vminitd.js",
    platform: "node",
    format: "esm",
    target: "esnext",
    external: ["bun:ffi"],
    sourcemap: false,
    plugins: [predecodedDescriptorsPlugin],
  },
  // Not the shim: its descriptors as object literals cost the server 2.4 MiB of RSS (49.5 -> 51.9
  // MiB 2 s after a `ctr run -d`, page cache dropped, 4 runs each), over its 50 MiB budget, for
  // ~10 ms of start-up.
  shimTarget,
];

const only = process.argv[2];
for (const t of targets) {
  if (only && !t.outfile.includes(only)) continue;
  await build({ bundle: true, sourcemap: "linked", logLevel: "warning", legalComments: "none", ...t });
}
