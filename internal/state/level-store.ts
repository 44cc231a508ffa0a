import { existsSync } from "node:fs";
import { Level } from "level";

/**
 * The only module that touches `level` (classic-level, a native addon). The shim becomes a Node
 * SEA in which native addons are embedded and `dlopen`ed from a temp file, so the import lives in
 * one place that the SEA build can special-case, and everything else sees the `Kv` interface.
 */
export interface Kv {
  /** `sync` makes LevelDB fsync its log before resolving: for records that must survive power loss. */
  put(key: string, value: string, opts?: { sync?: boolean }): Promise<void>;
  get(key: string): Promise<string | undefined>;
  del(key: string): Promise<void>;
  /** Entries with `gt < key < lt`, in key order. */
  range(gt: string, lt: string): Promise<Array<[string, string]>>;
  close(): Promise<void>;
}

/** Another process (or another handle in this one) holds the database's LOCK. */
export class KvLockedError extends Error {
  constructor(readonly location: string) {
    super(`database ${location} is open in another process (its LevelDB LOCK is held)`);
    this.name = "KvLockedError";
  }
}

export class KvMissingError extends Error {
  constructor(readonly location: string) {
    super(`database ${location} does not exist`);
    this.name = "KvMissingError";
  }
}

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === "string" ? cause.code : undefined;
}

function causeMessage(err: unknown): string {
  const cause = (err as { cause?: { message?: unknown } }).cause;
  return typeof cause?.message === "string" ? cause.message : String(err);
}

export async function openKv(location: string, opts: { create: boolean }): Promise<Kv> {
  // LevelDB reports a missing parent directory as an I/O error on LOCK: say what it means.
  if (!opts.create && !existsSync(location)) throw new KvMissingError(location);
  // A ledger holds a handful of small records: keep LevelDB's per-database memory small, since
  // every running VM keeps its own database open.
  const db = new Level<string, string>(location, {
    createIfMissing: opts.create,
    errorIfExists: false,
    writeBufferSize: 64 * 1024,
    cacheSize: 64 * 1024,
    keyEncoding: "utf8",
    valueEncoding: "utf8",
  });
  try {
    await db.open();
  } catch (err) {
    if (causeCode(err) === "LEVEL_LOCKED") throw new KvLockedError(location);
    if (/does not exist/.test(causeMessage(err))) throw new KvMissingError(location);
    throw new Error(`cannot open database ${location}: ${causeMessage(err)}`, { cause: err });
  }
  return {
    put: (key, value, o) => db.put(key, value, { sync: o?.sync ?? false }),
    get: (key) => db.get(key),
    del: (key) => db.del(key),
    range: (gt, lt) => db.iterator({ gt, lt }).all(),
    close: () => db.close(),
  };
}

/**
 * Deletes a closed database (classic-level's static `destroy`, which level's typings omit). LevelDB takes the LOCK first, so this fails with KvLockedError
 * instead of pulling files from under another process that opened it in the meantime.
 */
export async function destroyKv(location: string): Promise<void> {
  try {
    await (Level as unknown as { destroy(location: string): Promise<void> }).destroy(location);
  } catch (err) {
    if ((err as { code?: unknown }).code === "LEVEL_LOCKED" || causeCode(err) === "LEVEL_LOCKED") {
      throw new KvLockedError(location);
    }
    throw err;
  }
}
