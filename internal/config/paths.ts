import { join } from "node:path";

/**
 * Where beetroot keeps things on the host. Every directory can be moved with an environment
 * variable so tests and CI can run against private trees; the defaults follow the FHS the way
 * containerd and Kata do (cache = rebuildable, lib = durable state, run = gone after reboot).
 */
export interface BeetrootPaths {
  /** Rebuildable artefacts: downloaded .debs, unpacked prefixes, kernel and guest image builds, probe results. */
  readonly cacheDir: string;
  /** Packages from newer Debian suites, unpacked without touching the system (`<prefix>/<name>/...`). */
  readonly prefixDir: string;
  /** Built guest assets (vmlinux, guest.erofs) keyed by fingerprint. */
  readonly assetsDir: string;
  /** Durable state: the resource ledger that `delete` and `gc` use after a crash. */
  readonly libDir: string;
  /** Runtime sockets, pid files and per-VM scratch; removed on reboot. */
  readonly runDir: string;
  /** Operator configuration. */
  readonly configFile: string;
}

export function beetrootPaths(env: NodeJS.ProcessEnv = process.env): BeetrootPaths {
  const cacheDir = env.BEETROOT_CACHE_DIR ?? "/var/cache/beetroot";
  return {
    cacheDir,
    prefixDir: env.BEETROOT_PREFIX_DIR ?? join(cacheDir, "prefix"),
    assetsDir: env.BEETROOT_ASSETS_DIR ?? join(cacheDir, "assets"),
    libDir: env.BEETROOT_LIB_DIR ?? "/var/lib/beetroot",
    runDir: env.BEETROOT_RUN_DIR ?? "/run/beetroot",
    configFile: env.BEETROOT_CONFIG ?? "/etc/beetroot/config.toml",
  };
}
