import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { BeetrootPaths } from "../config/paths.ts";
import type { Logger } from "../log/logger.ts";
import {
  type Ledger,
  LedgerBusyError,
  type LedgerEntry,
  ledgerLocation,
  listOwners,
  openLedger,
} from "./ledger.ts";
import { destroyKv, KvLockedError } from "./level-store.ts";
import { type ReleaseContext, type Releasers, releaseResource } from "./releasers.ts";
import { describeResource } from "./resources.ts";

export interface OwnerSweep {
  readonly owner: string;
  /** alive: its database is locked by a running process, left alone. */
  readonly status: "alive" | "clean" | "partial";
  readonly released: readonly string[];
  readonly failed: readonly { readonly resource: string; readonly error: string }[];
  /** With dryRun: what would be released. */
  readonly pending: readonly string[];
}

export function releaseContext(paths: BeetrootPaths, log: Logger): ReleaseContext {
  return { allowedRoots: [paths.runDir, paths.libDir, paths.cacheDir], log };
}

/**
 * Releases everything a dead owner's ledger still lists, newest first (the reverse of creation,
 * like the cleanup stack would have), forgetting each entry once its resource is gone. Entries
 * whose release fails stay in the ledger for the next attempt.
 */
export async function releaseAll(
  ledger: Ledger,
  releasers: Releasers,
  ctx: ReleaseContext,
): Promise<{ released: string[]; failed: { resource: string; error: string }[] }> {
  const released: string[] = [];
  const failed: { resource: string; error: string }[] = [];
  const entries: LedgerEntry[] = (await ledger.list()).reverse();
  for (const entry of entries) {
    const what = `${entry.label}: ${describeResource(entry.resource)}`;
    try {
      await releaseResource(entry.resource, releasers, ctx);
      await ledger.release(entry.id);
      released.push(what);
      ctx.log.info("released", { owner: ledger.owner, resource: what });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      failed.push({ resource: what, error });
      ctx.log.warn("release failed", { owner: ledger.owner, resource: what, error });
    }
  }
  return { released, failed };
}

const UNBORN_GRACE_MS = 60_000;

const alive = (owner: string): OwnerSweep => ({
  owner,
  status: "alive",
  released: [],
  failed: [],
  pending: [],
});

export async function sweepOwner(
  owner: string,
  opts: { paths: BeetrootPaths; releasers: Releasers; log: Logger; dryRun?: boolean },
): Promise<OwnerSweep> {
  // A directory without a database (no CURRENT): LevelDB is creating it right now, or its owner
  // died while it did. Only age tells these apart, so a young one is left to its probable owner;
  // and it is judged before opening, because a failed open touches the directory too.
  const location = ledgerLocation(owner, opts.paths);
  if (existsSync(location) && !existsSync(join(location, "CURRENT"))) {
    if (Date.now() - statSync(location).mtimeMs < UNBORN_GRACE_MS) return alive(owner);
    try {
      if (!opts.dryRun) await destroyKv(location);
    } catch (e) {
      if (e instanceof KvLockedError) return alive(owner);
      throw e;
    }
    return { owner, status: "clean", released: [], failed: [], pending: [] };
  }
  let ledger: Ledger;
  try {
    ledger = await openLedger(owner, opts.paths, { create: false, waitMs: 0 });
  } catch (err) {
    if (err instanceof LedgerBusyError) return alive(owner);
    throw err;
  }
  try {
    if (opts.dryRun) {
      const pending = (await ledger.list())
        .reverse()
        .map((e) => `${e.label}: ${describeResource(e.resource)}`);
      return { owner, status: pending.length ? "partial" : "clean", released: [], failed: [], pending };
    }
    const { released, failed } = await releaseAll(
      ledger,
      opts.releasers,
      releaseContext(opts.paths, opts.log),
    );
    return { owner, status: failed.length ? "partial" : "clean", released, failed, pending: [] };
  } finally {
    await ledger.close();
  }
}

/** Sweeps every owner whose process is gone (or only those named). */
export async function collectGarbage(opts: {
  paths: BeetrootPaths;
  releasers: Releasers;
  log: Logger;
  owners?: readonly string[];
  dryRun?: boolean;
}): Promise<OwnerSweep[]> {
  const owners = opts.owners ?? listOwners(opts.paths);
  const out: OwnerSweep[] = [];
  for (const owner of owners) out.push(await sweepOwner(owner, opts));
  return out;
}
