import { execFile, execFileSync } from "node:child_process";
import { readFileSync, rmSync, statSync, unlinkSync } from "node:fs";
import { resolve, sep } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "../log/logger.ts";
import { findByMarker, identify, terminate } from "./proc.ts";
import type { Resource, ResourceKind } from "./resources.ts";

/**
 * How each kind of ledger resource is released when its owner is gone. Every releaser is
 * idempotent: "already gone" is success, because a crash may have happened between releasing a
 * resource and forgetting it. Other areas add releasers for their kinds (network: tap, cni,
 * netns) by merging their map with `basicReleasers()`.
 */
export interface ReleaseContext {
  /**
   * Paths a releaser may delete must lie under one of these (beetroot's run, lib and cache
   * dirs): a damaged ledger must never turn into `rm -rf /`.
   */
  readonly allowedRoots: readonly string[];
  readonly log: Logger;
}

export type Releaser<K extends ResourceKind> = (
  r: Extract<Resource, { kind: K }>,
  ctx: ReleaseContext,
) => Promise<void>;
export type Releasers = { readonly [K in ResourceKind]?: Releaser<K> };

export class ReleaseRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReleaseRefusedError";
  }
}

export function assertUnderRoots(path: string, roots: readonly string[]): string {
  const abs = resolve(path);
  for (const root of roots) {
    const r = resolve(root);
    if (abs.startsWith(r + sep) && abs.length > r.length + 1) return abs;
  }
  throw new ReleaseRefusedError(`refusing to remove ${path}: not under ${roots.join(" or ")}`);
}

function removePath(path: string, ctx: ReleaseContext, recursive: boolean): void {
  const abs = assertUnderRoots(path, ctx.allowedRoots);
  if (recursive) {
    rmSync(abs, { recursive: true, force: true });
    return;
  }
  try {
    unlinkSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** Every mount point in this mount namespace (field 5 of mountinfo, octal escapes undone). */
function mountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((mp): mp is string => mp !== undefined)
    .map((mp) => mp.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
}

export function isMountPoint(path: string): boolean {
  const abs = resolve(path);
  return mountPoints().includes(abs);
}

/**
 * Detaches every mount at or below `dir`, deepest first. A recursive removal must never walk into
 * a mount: under a VM's run dir that could be a volume, i.e. the user's own host data.
 */
function detachMountsUnder(dir: string): void {
  const abs = resolve(dir);
  const under = mountPoints()
    .filter((mp) => mp === abs || mp.startsWith(`${abs}/`))
    .sort((a, b) => b.length - a.length);
  for (const mp of under) execFileSync("umount", ["-l", mp]);
}

const execFileAsync = promisify(execFile);

async function releaseProcess(r: Extract<Resource, { kind: "process" }>, ctx: ReleaseContext): Promise<void> {
  if (r.pid !== undefined && r.startTime !== undefined && r.bootId !== undefined) {
    await terminate({ pid: r.pid, startTime: r.startTime, bootId: r.bootId }, { graceMs: 1000 });
    return;
  }
  // Recorded but never updated with its pid: the owner died between spawn and update, or
  // before spawn. The marker (a path private to this resource) finds it if it runs.
  for (const pid of findByMarker(r.marker)) {
    const id = identify(pid);
    if (!id) continue;
    ctx.log.info("releasing process found by its marker", { pid, marker: r.marker });
    await terminate(id, { graceMs: 1000 });
  }
}

/**
 * Unmounts `path` if it is a mount point; absent counts as done. Lazy: a process that still has it
 * open (QEMU, virtiofsd, a guest's file) must not keep a cleanup from finishing.
 */
export async function detachMount(path: string): Promise<void> {
  if (isMountPoint(path)) await execFileAsync("umount", ["-l", path]);
}

async function releaseMount(r: Extract<Resource, { kind: "mount" }>, _ctx: ReleaseContext): Promise<void> {
  await detachMount(r.path);
}

export function basicReleasers(): Releasers {
  return {
    process: releaseProcess,
    socket: async (r, ctx) => removePath(r.path, ctx, false),
    file: async (r, ctx) => removePath(r.path, ctx, false),
    disk: async (r, ctx) => removePath(r.path, ctx, false),
    dir: async (r, ctx) => {
      // A dir whose contents are all recorded separately is gone by now; rm -r covers the rest.
      try {
        statSync(r.path);
      } catch {
        return;
      }
      detachMountsUnder(r.path);
      removePath(r.path, ctx, true);
    },
    mount: releaseMount,
  };
}

/** Releases one resource with the matching releaser; throws if there is none for its kind. */
export async function releaseResource(r: Resource, releasers: Releasers, ctx: ReleaseContext): Promise<void> {
  const releaser = releasers[r.kind] as Releaser<typeof r.kind> | undefined;
  if (!releaser)
    throw new ReleaseRefusedError(`no releaser for ${r.kind} resources in this build of beetroot`);
  await (releaser as (r: Resource, ctx: ReleaseContext) => Promise<void>)(r, ctx);
}
