import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import { ADDON_CFLAGS } from "../build/recipe.ts";

/**
 * Builds vminitd_sys for this host into `dir` with the flags the image uses, for tests that run
 * the guest's modules under Bun (or Node) here; point BEETROOT_VMINITD_SYS at the result.
 */
export function buildVminitdSysForHost(dir: string): string {
  const out = join(dir, "vminitd_sys.node");
  execFileSync("gcc", [...ADDON_CFLAGS, "-o", out, resolve(import.meta.dirname, "vminitd_sys.c")]);
  return out;
}
