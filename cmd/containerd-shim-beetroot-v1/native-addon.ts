import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getRawAsset, isSea } from "node:sea";
import { beetrootPaths } from "../../internal/config/paths.ts";

/**
 * Loads a native addon the shim bundle needs (classic-level, under the resource ledger). A Node SEA
 * can only `dlopen` real files, so the addon travels as a SEA asset and is written once to
 * `<cacheDir>/native/<name>-<hash>.node` (content-addressed: a new build never loads an old file);
 * the plain bundle (`node dist/containerd-shim-beetroot-v1.cjs`) loads it from node_modules.
 * `sha256` is the asset's hash computed by the build: with it, a start whose file already exists
 * neither reads the asset out of the executable nor loads OpenSSL to hash it.
 */
export function loadNativeAddon(asset: string, devPath: string, sha256?: string): unknown {
  const mod = { exports: {} as unknown };
  if (!isSea()) {
    process.dlopen(mod, devPath);
    return mod.exports;
  }
  let data: Buffer | undefined;
  const bytes = () => {
    data ??= Buffer.from(getRawAsset(asset) as ArrayBuffer);
    return data;
  };
  const hash = (sha256 ?? createHash("sha256").update(bytes()).digest("hex")).slice(0, 16);
  const name = `${asset.replace(/\.node$/, "")}-${hash}-${process.arch}.node`;
  let file = "";
  for (const dir of [join(beetrootPaths().cacheDir, "native"), join(tmpdir(), "beetroot-native")]) {
    try {
      mkdirSync(dir, { recursive: true });
      file = join(dir, name);
      if (!existsSync(file)) {
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, bytes(), { mode: 0o755 });
        renameSync(tmp, file);
      }
      break;
    } catch {
      file = "";
    }
  }
  if (file === "") throw new Error(`cannot extract the native addon ${asset}: no writable cache directory`);
  process.dlopen(mod, file);
  return mod.exports;
}
