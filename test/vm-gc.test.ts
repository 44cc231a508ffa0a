import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allReleasers } from "../internal/cleanup/releasers.ts";
import { createLogger } from "../internal/log/logger.ts";
import { collectGarbage } from "../internal/state/gc.ts";
import { listOwners } from "../internal/state/ledger.ts";
import { skipReason } from "./fixtures/skip.ts";
import {
  leftovers,
  missingVmAssets,
  NOTHING_LEFT,
  processesMentioning,
  type VmTestEnv,
  vmTestEnv,
} from "./vm-support.ts";

/**
 * The launcher's process is SIGKILLed with a VM running: its QEMU and vhost-device-vsock outlive
 * it, its ledger is left behind unlocked, and `beetroot gc` (the same sweep, in-process) releases
 * every process, socket, file and dir, and removes the ledger.
 */
const missing = skipReason(import.meta.url, missingVmAssets());

describe.skipIf(missing)("gc after a crashed launcher", () => {
  let env: VmTestEnv;
  let script: string;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    env = await vmTestEnv();
    // Outside vitest the child is plain node: bundle it, next to node_modules so `level` resolves.
    const cache = join(import.meta.dirname, "../node_modules/.cache/beetroot-test");
    mkdirSync(cache, { recursive: true });
    script = join(cache, `vm-launcher-child-${process.pid}.mjs`);
    await build({
      entryPoints: [join(import.meta.dirname, "fixtures/vm-launcher-child.ts")],
      outfile: script,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      logLevel: "error",
    });
  });
  afterAll(() => {
    child?.kill("SIGKILL");
    rmSync(script, { force: true });
    env?.cleanup();
  });

  it("releases the QEMU, vhost-device-vsock and files of a SIGKILLed launcher", async () => {
    child = spawn(process.execPath, [script, env.paths.runDir, env.paths.libDir, "orphan-1"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child!.stdout?.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out.split("\n")[0]!);
      });
      child!.once("exit", (code) => reject(new Error(`launcher child exited ${code}: ${stderr}`)));
    });
    const pids = JSON.parse(line) as { qemu: number; vhostDeviceVsock: number };

    const exited = new Promise((r) => child!.once("exit", r));
    child.kill("SIGKILL");
    await exited;

    // The VM outlived its launcher; the ledger says what to release.
    const orphans = processesMentioning(env.root);
    expect(orphans).toContain(pids.vhostDeviceVsock);
    console.log(
      `after SIGKILL of the launcher: ${orphans.length} orphaned process(es) (QEMU ${orphans.includes(pids.qemu) ? "alive" : "gone"})`,
    );
    expect(listOwners(env.paths)).toEqual(["vm-orphan-1"]);
    expect(existsSync(join(env.paths.runDir, "vm", "orphan-1"))).toBe(true);

    const sweeps = await collectGarbage({
      paths: env.paths,
      releasers: allReleasers(),
      log: createLogger({ fd: null }),
    });
    expect(sweeps).toHaveLength(1);
    expect(sweeps[0]).toMatchObject({ owner: "vm-orphan-1", status: "clean", failed: [] });
    const released = sweeps[0]!.released.map((r) => r.split(":")[0]);
    expect(released).toEqual([
      "qemu",
      "qmp-socket",
      "vhost-device-vsock",
      "vsock-uds",
      "vhost-user-socket",
      "vsock-listener",
      "disk-share",
      "vsockd-stderr",
      "qemu-stderr",
      "console-log",
      "run-dir",
    ]);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });
});
