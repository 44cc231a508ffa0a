/**
 * The host side of a VM's volume share: one directory per VM that virtiofsd exports, into which
 * each volume's source is bind-mounted under a name of its own. Nothing else of the host is
 * reachable from the guest: virtiofsd serves only this tree, from its own mount namespace.
 *
 * The share root is a mount of its own with shared propagation, so binds made after virtiofsd
 * started (a container joining the pod) reach virtiofsd's namespace, which holds a slave copy.
 * Propagation copies a mount as it is at that moment, and a later remount (to read-only) does not
 * propagate: each bind is therefore made complete — read-only, nosuid, … — in a private staging
 * directory first, and only then moved into the share (measured: a bind remounted in place stays
 * writable in virtiofsd's namespace; one moved in read-only arrives read-only).
 */
import { execFile } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { detachMount, isMountPoint } from "../state/releasers.ts";
import type { Volume } from "./plan.ts";

const execFileAsync = promisify(execFile);

/** Volume names in the share: short, no separators, so they can never name a path outside it. */
export const VOLUME_NAME_RE = /^v[0-9]{1,6}$/;

async function mount(args: string[]): Promise<void> {
  try {
    await execFileAsync("mount", args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`mount ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`);
  }
}

function removePlaceholder(path: string, kind: Volume["kind"]): void {
  try {
    if (kind === "dir") rmdirSync(path);
    else unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function makePlaceholder(path: string, kind: Volume["kind"]): void {
  // Exclusive: a name already there is another volume's; never mount over it.
  if (kind === "dir") mkdirSync(path, { mode: 0o700 });
  else closeSync(openSync(path, "wx", 0o600));
}

export interface ShareDirs {
  /** Exported by virtiofsd; a mount with shared propagation. */
  readonly share: string;
  /** Where binds are made before they move into the share; a private mount. */
  readonly stage: string;
}

/** Makes both directories mount points with the propagation each needs. */
export async function prepareShareDirs(dirs: ShareDirs): Promise<void> {
  for (const [dir, propagation] of [
    [dirs.share, "--make-shared"],
    [dirs.stage, "--make-private"],
  ] as const) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!isMountPoint(dir)) await mount(["--bind", dir, dir]);
    // Private first: the bind inherits its parent's peer group, which must not see our mounts.
    await mount(["--make-private", dir]);
    if (propagation === "--make-shared") await mount([propagation, dir]);
  }
}

/** Binds `v.source` into the share as `name`, with the volume's flags already in place. */
export async function bindVolume(dirs: ShareDirs, name: string, v: Volume): Promise<void> {
  if (!VOLUME_NAME_RE.test(name))
    throw new Error(`volume name ${JSON.stringify(name)} must match ${VOLUME_NAME_RE}`);
  const staged = join(dirs.stage, name);
  const target = join(dirs.share, name);
  makePlaceholder(target, v.kind);
  makePlaceholder(staged, v.kind);
  try {
    const opts = [v.readOnly ? "ro" : "rw", ...v.flags].join(",");
    // util-linux makes the bind, then remounts it with the flags (one call, both steps).
    await mount([v.recursive ? "--rbind" : "--bind", "-o", opts, v.source, staged]);
    await mount(["--move", staged, target]);
  } catch (err) {
    await detachMount(staged).catch(() => {});
    removePlaceholder(staged, v.kind);
    throw err;
  }
  removePlaceholder(staged, v.kind);
}

/** Undoes bindVolume: the mount (and, for rbind, everything under it) goes, then its placeholder. */
export async function unbindVolume(dirs: ShareDirs, name: string, kind: Volume["kind"]): Promise<void> {
  const target = join(dirs.share, name);
  await detachMount(target);
  removePlaceholder(target, kind);
}
