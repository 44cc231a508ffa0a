// Where ledgers live, apart from ledger.ts: the shim's `delete` asks whether a VM left one before
// it loads LevelDB's native addon, which only a sweep needs.
import { join } from "node:path";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";

export class LedgerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LedgerError";
  }
}

const OWNER_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$/;

/** A name a ledger directory may have (what validateOwner accepts, short of `..`). */
export const isOwnerName = (name: string): boolean => OWNER_RE.test(name);

export function validateOwner(owner: string): string {
  if (!isOwnerName(owner) || owner.includes("..")) {
    throw new LedgerError(
      `invalid ledger owner ${JSON.stringify(owner)}: use [A-Za-z0-9_.-], start alphanumeric, ≤200 chars`,
    );
  }
  return owner;
}

export function ledgerLocation(
  owner: string,
  paths: Pick<BeetrootPaths, "libDir"> = beetrootPaths(),
): string {
  return join(ledgerRoot(paths), validateOwner(owner));
}

export function ledgerRoot(paths: Pick<BeetrootPaths, "libDir"> = beetrootPaths()): string {
  return join(paths.libDir, "ledger");
}
