import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestImageArtifact } from "../guest/build/artifact.ts";
import { type BeetrootPaths, beetrootPaths } from "../internal/config/paths.ts";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { kernelArtifact } from "../internal/kernel/index.ts";
import { createLogger } from "../internal/log/logger.ts";
import { listOwners } from "../internal/state/ledger.ts";
import { findByMarker } from "../internal/state/proc.ts";
import { resolveVmHost, type VmHost } from "../internal/vm/host.ts";
import { type Missing, setupMissing } from "./fixtures/skip.ts";

/**
 * Shared by the test/vm*.test.ts suites: what is missing for real VM boots (to skip with the
 * reason), private beetroot directories per suite, and leak checks.
 */
export function missingVmAssets(): Missing | undefined {
  try {
    loadHostDeps();
    kernelArtifact();
    guestImageArtifact();
  } catch (err) {
    return setupMissing((err as Error).message);
  }
  return undefined;
}

export interface VmTestEnv {
  readonly paths: BeetrootPaths;
  readonly host: VmHost;
  readonly root: string;
  cleanup(): void;
}

/**
 * Private run/lib dirs (short: unix socket paths are limited to 107 bytes), the real assets and
 * host programs, and this host's accelerator decision (TCG here: the KVM probe fails on PVM).
 */
export async function vmTestEnv(): Promise<VmTestEnv> {
  const root = mkdtempSync(join(tmpdir(), "bv-"));
  const paths = beetrootPaths({
    ...process.env,
    BEETROOT_RUN_DIR: join(root, "run"),
    BEETROOT_LIB_DIR: join(root, "lib"),
  });
  const host = await resolveVmHost(
    paths,
    createLogger({ fd: process.env.BEETROOT_TEST_LOG ? 2 : null, level: "debug" }),
  );
  return { paths, host, root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Live processes whose argv mentions `needle` (our private dirs make that exact). */
export const processesMentioning = findByMarker;

/** Everything a VM could leave behind under `env`: processes, run dir entries, ledger owners. */
export function leftovers(env: VmTestEnv): { processes: number[]; runEntries: string[]; owners: string[] } {
  const vmDir = join(env.paths.runDir, "vm");
  return {
    processes: processesMentioning(env.root),
    runEntries: existsSync(vmDir) ? readdirSync(vmDir) : [],
    owners: listOwners(env.paths),
  };
}

export const NOTHING_LEFT = { processes: [], runEntries: [], owners: [] };
