import { networkReleasers } from "../network/releasers.ts";
import { basicReleasers, type Releasers } from "../state/releasers.ts";

/**
 * How to release every kind of resource the ledger can hold. `beetroot gc` and the shim's
 * `delete` both use this set, so a resource kind added by one area is released by both.
 */
export function allReleasers(): Releasers {
  return { ...basicReleasers(), ...networkReleasers() };
}
