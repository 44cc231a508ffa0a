import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { execa, type Result } from "execa";
import { loadHostDeps } from "../../hostdeps/index.ts";
import { canConnect } from "../socket-address.ts";

/**
 * A private containerd (2.1 or 1.7 from `beetroot setup`) with its own root, state, sockets and
 * config under a temp dir, and the beetroot shim on its PATH as `containerd-shim-beetroot-v1`.
 * CRI is disabled: these tests drive containerd with ctr.
 */
export type ContainerdVersion = "2.1" | "1.7";

/** The checkout: the nearest directory above this module (or the bundle in dist/) with beetroot's package.json. */
function findRepo(from: string): string {
  for (let d = from; d !== dirname(d); d = dirname(d)) {
    try {
      if (
        (JSON.parse(readFileSync(join(d, "package.json"), "utf8")) as { name?: string }).name === "beetroot"
      )
        return d;
    } catch {}
  }
  return resolve(from, "../../..");
}

export const REPO = process.env.BEETROOT_REPO ?? findRepo(import.meta.dirname);
export const SHIM_SEA = join(REPO, "dist", "containerd-shim-beetroot-v1");
export const SHIM_BUNDLE = join(REPO, "dist", "containerd-shim-beetroot-v1.cjs");

export interface PrivateContainerd {
  readonly version: ContainerdVersion;
  readonly dir: string;
  readonly address: string;
  readonly ttrpcAddress: string;
  readonly logFile: string;
  readonly env: NodeJS.ProcessEnv;
  readonly ctrPath: string;
  ctr(
    args: readonly string[],
    opts?: { input?: string | Buffer; timeoutMs?: number; reject?: boolean },
  ): Promise<Result>;
  stop(): Promise<void>;
}

function configToml(version: ContainerdVersion, dir: string, address: string): string {
  if (version === "2.1") {
    return `version = 3
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]
[grpc]
  address = "${address}"
[ttrpc]
  address = "${address}.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.service.v1.diff-service"]
  default = ["erofs", "walking"]
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "overlayfs"
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "erofs"
  differ = "erofs"
`;
  }
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.nri.v1.nri"]
[grpc]
  address = "${address}"
[ttrpc]
  address = "${address}.ttrpc"
[debug]
  level = "debug"
`;
}

/** Pids of beetroot shims serving the containerd at `address`. */
export function shimPidsOf(address: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      if (argv.some((a) => a.includes("containerd-shim-beetroot-v1")) && argv.includes(address))
        out.push(Number(p));
    } catch {}
  }
  return out;
}

/**
 * Stops a private containerd and the shims it started, then unmounts what it left under `dir`.
 * Shims outlive containerd by design: the ones whose argv names its socket get SIGTERM first, so a
 * test run leaves no VM behind. Snapshotters (erofs, CRI's overlay rootfs and /dev/shm) mount
 * under its root: those go before anyone removes `dir`.
 */
export async function stopContainerdAndShims(
  child: ChildProcess,
  address: string,
  dir: string,
): Promise<void> {
  for (const pid of shimPidsOf(address)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {}
  }
  const deadline = Date.now() + 30_000;
  while (shimPidsOf(address).length > 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  child.kill("SIGTERM");
  await new Promise((r) => {
    if (child.exitCode !== null) r(undefined);
    else child.once("exit", r);
  });
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .reverse();
  for (const m of mounts) await execa("umount", ["-l", m], { reject: false });
}

/**
 * `shim`: "sea" runs dist/containerd-shim-beetroot-v1, "bundle" runs the .cjs through node (what
 * development uses); both must have been built (`npm run build`).
 */
export async function startContainerd(opts: {
  version: ContainerdVersion;
  shim?: "sea" | "bundle";
  env?: NodeJS.ProcessEnv;
}): Promise<PrivateContainerd> {
  const deps = loadHostDeps();
  const install = deps.containerd[opts.version];
  const dir = mkdtempSync(`/tmp/bct-${opts.version.replace(".", "")}-`);
  const binDir = join(dir, "bin");
  mkdirSync(binDir);
  const shimPath = join(binDir, "containerd-shim-beetroot-v1");
  if ((opts.shim ?? "sea") === "sea") {
    if (!existsSync(SHIM_SEA)) throw new Error(`${SHIM_SEA} is missing: run npm run build`);
    writeFileSync(shimPath, `#!/bin/sh\nexec ${SHIM_SEA} "$@"\n`);
  } else {
    writeFileSync(shimPath, `#!/bin/sh\nexec ${process.execPath} ${SHIM_BUNDLE} "$@"\n`);
  }
  chmodSync(shimPath, 0o755);
  const address = join(dir, "c.sock");
  const config = join(dir, "config.toml");
  writeFileSync(config, configToml(opts.version, dir, address));
  const logFile = join(dir, "containerd.log");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...opts.env,
    // Our shim and runc, containerd's own runc shim, then mkfs.erofs >= 1.8 for the erofs snapshotter.
    PATH: [binDir, install.binDir, deps.erofs.binDir, process.env.PATH ?? "/usr/bin:/bin"].join(":"),
  };
  const log = openSync(logFile, "a");
  const child: ChildProcess = spawn(install.containerd, ["--config", config], {
    env,
    stdio: ["ignore", log, log],
    detached: false,
  });
  const deadline = Date.now() + 20_000;
  while (!(await canConnect(address))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(
        `containerd ${opts.version} did not start:\n${readFileSync(logFile, "utf8").slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const ctrPath = install.ctr;
  return {
    version: opts.version,
    dir,
    address,
    ttrpcAddress: `${address}.ttrpc`,
    logFile,
    env,
    ctrPath,
    ctr: (args, o = {}) =>
      execa(ctrPath, ["--address", address, ...args], {
        env,
        input: o.input ?? "",
        timeout: o.timeoutMs ?? 120_000,
        reject: o.reject ?? true,
        stripFinalNewline: false,
      }),
    async stop() {
      await stopContainerdAndShims(child, address, dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
