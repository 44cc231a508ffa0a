import { readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";
import { isOwnerName, LedgerError, ledgerLocation, ledgerRoot } from "./ledger-location.ts";
import { destroyKv, type Kv, KvLockedError, KvMissingError, openKv } from "./level-store.ts";
import { parseResource, type Resource } from "./resources.ts";

export { LedgerError, ledgerLocation, ledgerRoot, validateOwner } from "./ledger-location.ts";

/**
 * The resource ledger: what one owner (a VM, a shim) has created on the host, written before
 * each resource exists and removed after it is released, so that `delete` and `beetroot gc` can
 * finish the job after a crash.
 *
 * LevelDB admits one process per database, and many shims run at once, so each owner has its
 * own database under `<libDir>/ledger/<owner>`. The LevelDB LOCK (an fcntl lock, dropped by the
 * kernel when the holder dies) doubles as a liveness signal: gc opens each owner's database and
 * one it cannot lock belongs to a live process.
 */
export interface LedgerEntry {
  /**
   * Sortable id: a record gets a larger id than every entry listed at that time, so releasing in
   * reverse id order is LIFO. (Ids of released entries may be given out again.)
   */
  readonly id: string;
  /** What the resource is for ("qemu", "qmp-socket", ...), for logs. */
  readonly label: string;
  readonly resource: Resource;
  readonly recordedAt: string;
}

export interface Ledger {
  readonly owner: string;
  /** Durably records a resource that is about to be created; returns its id. */
  record(resource: Resource, label?: string): Promise<string>;
  /** Replaces an entry's resource (e.g. a process gains its pid after spawn). */
  update(id: string, resource: Resource): Promise<void>;
  /** Forgets a resource that has been released. */
  release(id: string): Promise<void>;
  /** Entries in record order. */
  list(): Promise<LedgerEntry[]>;
  /** Closes the database; deletes it when no entries are left, so owners do not pile up. */
  close(): Promise<{ removed: boolean }>;
}

/** The owner's database is held by a live process (or by another handle in this process). */
export class LedgerBusyError extends LedgerError {
  constructor(readonly owner: string) {
    super(`ledger of "${owner}" is open in another process (its LevelDB LOCK is held): that owner is alive`);
    this.name = "LedgerBusyError";
  }
}

/** No database for this owner (or a directory left by a crash before LevelDB wrote one). */
export class LedgerMissingError extends LedgerError {
  constructor(
    readonly owner: string,
    readonly location: string,
  ) {
    super(`no ledger for "${owner}" at ${location}`);
    this.name = "LedgerMissingError";
  }
}

const ENTRY_PREFIX = "r!";
const ENTRY_END = "r~";
const ID_WIDTH = 12;

/** Owners that have a database on disk, alive or not. */
export function listOwners(paths: Pick<BeetrootPaths, "libDir"> = beetrootPaths()): string[] {
  let names: string[];
  try {
    names = readdirSync(ledgerRoot(paths));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names.filter(isOwnerName).sort();
}

function decodeEntry(owner: string, key: string, value: string): LedgerEntry {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (err) {
    throw new LedgerError(`ledger of "${owner}": entry ${key} is not JSON`, { cause: err });
  }
  const o = raw as { label?: unknown; resource?: unknown; recordedAt?: unknown };
  if (typeof o.label !== "string" || typeof o.recordedAt !== "string") {
    throw new LedgerError(`ledger of "${owner}": entry ${key} lacks label/recordedAt`);
  }
  return {
    id: key.slice(ENTRY_PREFIX.length),
    label: o.label,
    resource: parseResource(o.resource),
    recordedAt: o.recordedAt,
  };
}

function encodeEntry(label: string, resource: Resource, recordedAt: string): string {
  return JSON.stringify({ label, resource, recordedAt });
}

/**
 * Opens (creating by default) the ledger of `owner`. Throws LedgerBusyError when the owner's
 * database is held elsewhere for longer than `waitMs`; with `create: false`, throws LedgerError
 * if there is none.
 *
 * `waitMs` (default 3 s): gc and `delete` lock a database for a moment to look into it, so an
 * owner opening its own ledger may find it briefly held and should wait; gc itself passes 0,
 * since for gc a held lock means "owner alive".
 */
export async function openLedger(
  owner: string,
  paths: Pick<BeetrootPaths, "libDir"> = beetrootPaths(),
  opts: { create?: boolean; waitMs?: number } = {},
): Promise<Ledger> {
  const location = ledgerLocation(owner, paths);
  const deadline = Date.now() + (opts.waitMs ?? 3000);
  let kv: Kv | undefined;
  while (!kv) {
    try {
      kv = await openKv(location, { create: opts.create ?? true });
    } catch (err) {
      if (err instanceof KvLockedError) {
        if (Date.now() < deadline) {
          await sleep(20);
          continue;
        }
        throw new LedgerBusyError(owner);
      }
      if (err instanceof KvMissingError) throw new LedgerMissingError(owner, location);
      throw err;
    }
  }

  const existing = await kv.range(ENTRY_PREFIX, ENTRY_END);
  const last = existing.at(-1)?.[0];
  let nextSeq = last === undefined ? 1 : Number.parseInt(last.slice(ENTRY_PREFIX.length), 10) + 1;
  let closed = false;

  const keyOf = (id: string): string => {
    if (!/^\d+$/.test(id) || id.length !== ID_WIDTH)
      throw new LedgerError(`invalid ledger entry id ${JSON.stringify(id)}`);
    return ENTRY_PREFIX + id;
  };
  const live = () => {
    if (closed) throw new LedgerError(`ledger of "${owner}" is closed`);
  };
  const list = async (): Promise<LedgerEntry[]> => {
    live();
    return (await kv.range(ENTRY_PREFIX, ENTRY_END)).map(([k, v]) => decodeEntry(owner, k, v));
  };

  return {
    owner,
    async record(resource, label = resource.kind) {
      live();
      const checked = parseResource(resource);
      // Assigned synchronously so concurrent record() calls get distinct, ordered ids.
      const id = String(nextSeq++).padStart(ID_WIDTH, "0");
      // fsync: the entry must exist before the resource does, even across a power cut.
      await kv.put(keyOf(id), encodeEntry(label, checked, new Date().toISOString()), { sync: true });
      return id;
    },
    async update(id, resource) {
      live();
      const key = keyOf(id);
      const old = await kv.get(key);
      if (old === undefined) throw new LedgerError(`ledger of "${owner}" has no entry ${id}`);
      const prev = decodeEntry(owner, key, old);
      const checked = parseResource(resource);
      if (checked.kind !== prev.resource.kind) {
        throw new LedgerError(
          `ledger of "${owner}": entry ${id} is a ${prev.resource.kind}, not a ${checked.kind}`,
        );
      }
      await kv.put(key, encodeEntry(prev.label, checked, prev.recordedAt), { sync: true });
    },
    async release(id) {
      live();
      const key = keyOf(id);
      if ((await kv.get(key)) === undefined) throw new LedgerError(`ledger of "${owner}" has no entry ${id}`);
      // No fsync: losing this delete in a power cut only makes gc release a resource twice,
      // and every releaser treats "already gone" as done.
      await kv.del(key);
    },
    list,
    async close() {
      if (closed) return { removed: false };
      const empty = (await kv.range(ENTRY_PREFIX, ENTRY_END)).length === 0;
      closed = true;
      await kv.close();
      if (!empty) return { removed: false };
      try {
        await destroyKv(location);
        return { removed: true };
      } catch (err) {
        // gc opened it in the short window after close: it sees an empty ledger and removes it.
        if (err instanceof KvLockedError) return { removed: false };
        throw err;
      }
    },
  };
}
