/**
 * The single executable's main script: runs the shim bundle (a SEA asset) through a V8 code cache
 * that an earlier run wrote under the same V8 flags.
 *
 * Node's own SEA code cache is made at build time without flags, and V8 rejects a cache made under
 * other flags: the server runs with `--jitless --max-semi-space-size=1` (+ `--lite-mode`) for its
 * RSS, so it compiled all 600 KB of the bundle from source on every start (exec → socket 112 ms
 * instead of 88, "Code cache data rejected" on its stderr). Here each flag set gets a cache of its
 * own, written when a process of that kind exits, with the functions it compiled by then, so the
 * next one compiles little of its start-up path. Bundled as CommonJS on its own.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { getRawAsset } from "node:sea";
import { setFlagsFromString } from "node:v8";
import { Script } from "node:vm";
import { beetrootPaths } from "../../internal/config/paths.ts";
import { serverRuntimeV8Flags } from "../../internal/shim/server-flags.ts";

declare const BEETROOT_SHIM_BUNDLE_SHA256: string;
/** The asset holding the bundle (cmd/containerd-shim-beetroot-v1/build.mjs names it too). */
const BUNDLE_ASSET = "containerd-shim-beetroot-v1.cjs";

/** CommonJS's module wrapper; the bundle's `#!` line becomes a comment (same line numbers). */
function wrap(source: string): string {
  const body = source.startsWith("#!") ? `//${source.slice(2)}` : source;
  return `(function (exports, require, module, __filename, __dirname) {${body}\n})`;
}

/** FNV-1a: names the flag set in a file name without loading OpenSSL for a real hash. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/**
 * Where a cache lives: named by bundle, Node version, flags and the action (`start` and `delete`
 * run under the same flags but compile different functions; anything else shares one).
 */
function cacheFile(runtimeFlags: readonly string[]): string[] {
  const flags = fnv1a([process.env.NODE_OPTIONS ?? "", ...runtimeFlags].join("\0"));
  const action = ["start", "delete"].find((a) => process.argv.includes(a)) ?? "any";
  const name = `${bundlePrefix()}${process.version}-${flags}-${action}.v8cache`;
  return [join(beetrootPaths().cacheDir, "code-cache", name), join(tmpdir(), "beetroot-code-cache", name)];
}

function readCache(files: readonly string[]): Buffer | undefined {
  for (const f of files) {
    try {
      return readFileSync(f);
    } catch {}
  }
  return undefined;
}

/**
 * Best effort: a shim that cannot write a cache runs as fast as one without. Caches of other
 * bundles (earlier builds) go at the same time, so they do not pile up.
 */
function writeCache(files: readonly string[], data: Buffer): void {
  for (const f of files) {
    try {
      const dir = dirname(f);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = `${f}.${process.pid}.tmp`;
      writeFileSync(tmp, data, { mode: 0o600 });
      renameSync(tmp, f);
      for (const old of readdirSync(dir)) {
        if (old.startsWith("shim-") && !old.startsWith(bundlePrefix()))
          rmSync(join(dir, old), { force: true });
      }
      return;
    } catch {}
  }
}

function bundlePrefix(): string {
  return `shim-${BEETROOT_SHIM_BUNDLE_SHA256.slice(0, 16)}-`;
}

function run(): void {
  // The server's run-time V8 flags are part of the flags a cache is made under: set them first.
  const runtimeFlags = serverRuntimeV8Flags(process.env.NODE_OPTIONS);
  for (const f of runtimeFlags) setFlagsFromString(f);
  const files = cacheFile(runtimeFlags);
  const cachedData = readCache(files);
  const source = new TextDecoder().decode(getRawAsset(BUNDLE_ASSET) as ArrayBuffer);
  const script = new Script(wrap(source), {
    filename: BUNDLE_ASSET,
    ...(cachedData && { cachedData }),
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.once("exit", () => writeCache(files, script.createCachedData()));
  }
  const main = script.runInThisContext() as (
    exports: unknown,
    req: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  const module = { exports: {} };
  main(module.exports, require, module, process.execPath, dirname(process.execPath));
}

run();
