import { existsSync } from "node:fs";
import { allReleasers } from "../cleanup/releasers.ts";
import { loadConfig, type VmConfig } from "../config/config.ts";
import { beetrootPaths } from "../config/paths.ts";
import { loadHostDeps } from "../hostdeps/index.ts";
import type { Logger } from "../log/logger.ts";
import type { Releasers } from "../state/releasers.ts";
import { LayerCache } from "../storage/layer-cache.ts";
import { ErofsMountTranslator } from "../storage/translator.ts";
import { failedPrecondition } from "./errors.ts";
import { QemuVmmAdapter } from "./qemu-vmm.ts";
import type { HostRuntime } from "./serve.ts";

const SYSTEM_MKFS_EROFS = "/usr/bin/mkfs.erofs";

/** mkfs.erofs from `beetroot setup` (≥ 1.8), else the system's: plain directory images need no more. */
function mkfsErofs(): string {
  try {
    return loadHostDeps().mkfsErofs;
  } catch {
    if (existsSync(SYSTEM_MKFS_EROFS)) return SYSTEM_MKFS_EROFS;
    throw new Error("no mkfs.erofs: run `npx beetroot setup`");
  }
}

/** The production wiring of the shim server: QEMU VMs, EROFS layer disks cached under cacheDir. */
export function createHostRuntime(log: Logger): HostRuntime {
  const paths = beetrootPaths();
  return {
    vmm: new QemuVmmAdapter(log, paths),
    vmDefaults: () => {
      let vm: VmConfig;
      try {
        vm = loadConfig(paths).vm;
      } catch (err) {
        throw failedPrecondition(`cannot size the VM: ${err instanceof Error ? err.message : String(err)}`);
      }
      return { cpus: vm.cpus, memoryMib: vm.memoryMiB };
    },
    storage: new ErofsMountTranslator({
      cache: new LayerCache({ cacheDir: paths.cacheDir, mkfsErofs: mkfsErofs(), log }),
      log,
    }),
  };
}

/**
 * What `delete` may release from a dead shim's ledgers: processes, files, mounts and the pod network
 * (TAP, CNI attachment, namespace) — the same set `beetroot gc` uses.
 */
export function deleteReleasers(): Releasers {
  return allReleasers();
}
