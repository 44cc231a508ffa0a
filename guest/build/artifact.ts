/**
 * The built guest image as the rest of beetroot sees it: `<assetsDir>/guest/<fingerprint>/guest.erofs`
 * with `meta.json`, and `<assetsDir>/guest/current.json` naming what the last successful
 * `beetroot build guest` produced. Readers (the shim, tests) follow current.json and need none of the
 * build inputs at run time.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BeetrootPaths, beetrootPaths } from "../../internal/config/paths.ts";

export interface GuestImageMeta {
  readonly fingerprint: string;
  readonly builtAt: string;
  readonly buildSeconds: number;
  readonly imageBytes: number;
  /** Bytes staged into the image before compression. */
  readonly stagedBytes: number;
  readonly bunVersion: string;
  readonly crunVersion: string;
  readonly libcVersion: string;
  readonly mkfsVersion: string;
}

export interface GuestImageArtifact {
  /** Read-only EROFS root filesystem for `root=/dev/vda`. */
  readonly image: string;
  readonly fingerprint: string;
  readonly meta: GuestImageMeta;
}

export const BUILD_HINT = "run `npx beetroot build guest`";

export class GuestImageMissingError extends Error {
  constructor(what: string) {
    super(`guest image not available: ${what}; ${BUILD_HINT}`);
    this.name = "GuestImageMissingError";
  }
}

export function guestAssetsDir(paths: BeetrootPaths = beetrootPaths()): string {
  return join(paths.assetsDir, "guest");
}

export function imageDir(paths: BeetrootPaths, fingerprint: string): string {
  return join(guestAssetsDir(paths), fingerprint);
}

function isMeta(v: unknown): v is GuestImageMeta {
  const m = v as Partial<GuestImageMeta> | null;
  return (
    typeof m === "object" &&
    m !== null &&
    typeof m.fingerprint === "string" &&
    /^[0-9a-f]{64}$/.test(m.fingerprint) &&
    typeof m.imageBytes === "number"
  );
}

/** The image of a given fingerprint, if it is complete on disk. */
export function readImage(paths: BeetrootPaths, fingerprint: string): GuestImageArtifact | undefined {
  const dir = imageDir(paths, fingerprint);
  const image = join(dir, "guest.erofs");
  const metaPath = join(dir, "meta.json");
  if (!existsSync(image) || !existsSync(metaPath)) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(readFileSync(metaPath, "utf8"));
  } catch {
    return undefined;
  }
  if (!isMeta(meta) || meta.fingerprint !== fingerprint) return undefined;
  return { image, fingerprint, meta };
}

/** The current guest image; throws GuestImageMissingError (naming the build command) when there is none. */
export function guestImageArtifact(paths: BeetrootPaths = beetrootPaths()): GuestImageArtifact {
  const current = join(guestAssetsDir(paths), "current.json");
  if (!existsSync(current)) throw new GuestImageMissingError(`${current} does not exist`);
  let fingerprint: unknown;
  try {
    fingerprint = (JSON.parse(readFileSync(current, "utf8")) as { fingerprint?: unknown }).fingerprint;
  } catch (err) {
    throw new GuestImageMissingError(
      `${current} is unreadable (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  if (typeof fingerprint !== "string" || !/^[0-9a-f]{64}$/.test(fingerprint)) {
    throw new GuestImageMissingError(`${current} names no valid fingerprint`);
  }
  const artifact = readImage(paths, fingerprint);
  if (!artifact) throw new GuestImageMissingError(`${imageDir(paths, fingerprint)} is incomplete`);
  return artifact;
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function writeMeta(paths: BeetrootPaths, meta: GuestImageMeta): void {
  writeAtomic(join(imageDir(paths, meta.fingerprint), "meta.json"), `${JSON.stringify(meta, null, 2)}\n`);
}

export function markCurrent(paths: BeetrootPaths, fingerprint: string): void {
  writeAtomic(join(guestAssetsDir(paths), "current.json"), `${JSON.stringify({ fingerprint }, null, 2)}\n`);
}
