import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../log/logger.ts";
import { collectGarbage } from "./gc.ts";
import { listOwners, openLedger } from "./ledger.ts";
import { basicReleasers } from "./releasers.ts";

const execFileAsync = promisify(execFile);

/**
 * Ten owners in ten processes writing and reading their ledgers at the same time, while gc
 * sweeps: nothing may be lost, mixed up or released from under a live owner.
 */
describe("ledger with parallel owner processes", () => {
  let root: string;
  let worker: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "beetroot-ledger-par-"));
    // The worker runs outside vitest, so bundle the real ledger code for plain node; it lives
    // inside the checkout so that `level` (left external: a native addon) resolves.
    const cache = join(import.meta.dirname, "../../node_modules/.cache/beetroot-test");
    mkdirSync(cache, { recursive: true });
    worker = join(cache, `ledger-worker-${process.pid}.mjs`);
    await build({
      entryPoints: [join(import.meta.dirname, "testdata/ledger-worker.ts")],
      outfile: worker,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      logLevel: "error",
    });
  });
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(worker, { force: true });
  });

  it("keeps 10 concurrent owners intact and gc frees only the crashed ones", async () => {
    const libDir = join(root, "lib");
    const dataDir = join(root, "data");
    mkdirSync(dataDir, { recursive: true });
    const owners = Array.from({ length: 10 }, (_, i) => `vm-${i}`);
    const count = 100;
    const paths = {
      cacheDir: join(root, "cache"),
      prefixDir: "",
      assetsDir: "",
      libDir,
      runDir: dataDir,
      configFile: "",
    };
    const log = createLogger({ fd: null });

    const started = performance.now();
    const runs = owners.map((owner, i) =>
      execFileAsync(
        process.execPath,
        [worker, libDir, owner, String(count), dataDir, i % 2 ? "crash" : "close"],
        {
          cwd: join(import.meta.dirname, "../.."),
        },
      ).then(
        (r) => ({ owner, stdout: r.stdout, crashed: false }),
        (err: { stdout?: string; stderr?: string; signal?: string }) => {
          if (err.signal !== "SIGKILL") throw new Error(`worker ${owner} failed: ${err.stderr}`);
          return { owner, stdout: err.stdout ?? "", crashed: true };
        },
      ),
    );
    // gc running while the owners work must treat every live owner as alive and touch nothing.
    // (Dry run: an owner that closed with entries left counts as gone and would be released.)
    let done = false;
    const seen = { alive: 0, other: 0 };
    const sweeping = (async () => {
      while (!done) {
        for (const s of await collectGarbage({ paths, releasers: basicReleasers(), log, dryRun: true })) {
          seen[s.status === "alive" ? "alive" : "other"]++;
        }
      }
    })();
    const results = await Promise.all(runs).finally(() => {
      done = true;
    });
    await sweeping;
    const elapsedMs = performance.now() - started;
    console.log(
      `10 owner processes x ${count} records: ${elapsedMs.toFixed(0)} ms; concurrent gc saw ${seen.alive} live and ${seen.other} dead owners`,
    );
    // The sweeper must have met live owners, or this test did not test the lock.
    expect(seen.alive).toBeGreaterThan(0);

    const expectedLabels = Array.from({ length: count / 2 }, (_, k) => `file-${2 * k + 1}`);
    for (const r of results) {
      const line = JSON.parse(r.stdout.trim()) as { owner: string; listed: string[] };
      expect(line.owner).toBe(r.owner);
      expect(line.listed).toEqual(expectedLabels);
    }
    expect(results.filter((r) => r.crashed).map((r) => r.owner)).toEqual(owners.filter((_, i) => i % 2));

    // Owners that closed cleanly still hold entries (their files are "in use"): the database stays.
    expect(listOwners({ libDir })).toEqual(owners);
    for (const owner of owners) {
      const ledger = await openLedger(owner, { libDir }, { create: false });
      const entries = await ledger.list();
      expect(entries.map((e) => e.label)).toEqual(expectedLabels);
      expect(entries.every((e) => e.resource.kind === "file" && e.resource.path.includes(`${owner}-`))).toBe(
        true,
      );
      await ledger.close();
    }

    // Every owner process is gone now, so gc releases them all and the ledger directory empties.
    const sweeps = await collectGarbage({ paths, releasers: basicReleasers(), log });
    expect(sweeps.map((s) => [s.owner, s.status, s.released.length])).toEqual(
      owners.map((o) => [o, "clean", count / 2]),
    );
    expect(readdirSync(dataDir)).toEqual([]);
    expect(listOwners({ libDir })).toEqual([]);
    expect(existsSync(join(libDir, "ledger", "vm-0"))).toBe(false);
  });
});
