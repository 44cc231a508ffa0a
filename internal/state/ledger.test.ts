import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BeetrootPaths } from "../config/paths.ts";
import { createLogger } from "../log/logger.ts";
import { collectGarbage, sweepOwner } from "./gc.ts";
import { LedgerBusyError, LedgerError, listOwners, openLedger } from "./ledger.ts";
import { checkIdentity, identify, parseProcStat, readProcStat } from "./proc.ts";
import { assertUnderRoots, basicReleasers, ReleaseRefusedError } from "./releasers.ts";
import { InvalidResourceError, parseResource } from "./resources.ts";

let root: string;
let paths: BeetrootPaths;
const log = createLogger({ fd: null });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "beetroot-ledger-"));
  paths = {
    cacheDir: join(root, "cache"),
    prefixDir: join(root, "prefix"),
    assetsDir: join(root, "assets"),
    libDir: join(root, "lib"),
    runDir: join(root, "run"),
    configFile: join(root, "config.toml"),
  };
  mkdirSync(paths.runDir, { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("ledger", () => {
  it("records, updates, lists in order, releases and removes itself when empty", async () => {
    const ledger = await openLedger("vm-a", paths);
    const a = await ledger.record({ kind: "dir", path: join(paths.runDir, "a") }, "run-dir");
    const b = await ledger.record(
      { kind: "process", cmd: ["qemu", "-qmp", "/run/x/qmp"], marker: "/run/x/qmp" },
      "qemu",
    );
    expect(b > a).toBe(true);
    await ledger.update(b, {
      kind: "process",
      cmd: ["qemu", "-qmp", "/run/x/qmp"],
      marker: "/run/x/qmp",
      pid: 42,
      startTime: 7,
      bootId: "x",
    });
    const listed = await ledger.list();
    expect(listed.map((e) => [e.id, e.label])).toEqual([
      [a, "run-dir"],
      [b, "qemu"],
    ]);
    expect(listed[1]?.resource).toMatchObject({ pid: 42, startTime: 7 });
    await expect(ledger.update(a, { kind: "file", path: "/x" })).rejects.toThrow(/is a dir, not a file/);
    await ledger.release(b);
    await expect(ledger.release(b)).rejects.toThrow(LedgerError);
    expect(await ledger.close()).toEqual({ removed: false });
    expect(listOwners(paths)).toEqual(["vm-a"]);

    // Ids continue after a reopen, so record order survives restarts of the owner.
    const again = await openLedger("vm-a", paths);
    const c = await again.record({ kind: "file", path: "/tmp/c" });
    expect(c > a).toBe(true);
    await again.release(a);
    await again.release(c);
    expect(await again.close()).toEqual({ removed: true });
    expect(listOwners(paths)).toEqual([]);
  });

  it("admits one holder at a time and says so", async () => {
    const first = await openLedger("vm-b", paths);
    await expect(openLedger("vm-b", paths, { waitMs: 0 })).rejects.toThrow(LedgerBusyError);
    // gc sees the held lock as "alive" and leaves the owner alone.
    expect(await sweepOwner("vm-b", { paths, releasers: basicReleasers(), log })).toMatchObject({
      status: "alive",
    });
    await first.close();
  });

  it("waits for a briefly held lock when the owner opens its own ledger", async () => {
    const gcLike = await openLedger("vm-c", paths);
    await gcLike.record({ kind: "file", path: "/tmp/x" });
    setTimeout(() => void gcLike.close(), 100);
    const owner = await openLedger("vm-c", paths, { waitMs: 2000 });
    expect(await owner.list()).toHaveLength(1);
    await owner.close();
  });

  it("rejects bad owners and resources precisely", async () => {
    await expect(openLedger("../etc", paths)).rejects.toThrow(/invalid ledger owner/);
    await expect(openLedger("x", paths, { create: false })).rejects.toThrow(/no ledger for "x"/);
    const ledger = await openLedger("vm-d", paths);
    await expect(ledger.record({ kind: "file", path: "relative" })).rejects.toThrow(/absolute path/);
    await expect(ledger.record({ kind: "process", cmd: ["a"], marker: "zz" })).rejects.toThrow(
      /does not occur/,
    );
    await ledger.close();
    expect(() => parseResource({ kind: "tap", name: "x".repeat(16), netns: "/n" })).toThrow(
      InvalidResourceError,
    );
    expect(() => parseResource({ kind: "file", path: "/a", extra: 1 })).toThrow(/unknown field "extra"/);
    expect(() => parseResource({ kind: "bogus" })).toThrow(/unknown kind "bogus"/);
  });
});

describe("process identity", () => {
  it("parses stat lines whose comm contains spaces and parentheses", () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = "S";
    fields[19] = "123456";
    const st = parseProcStat(`77 (a) b (c) ${fields.join(" ")}`);
    expect(st).toEqual({ pid: 77, comm: "a) b (c", state: "S", ppid: 4, startTime: 123456 });
  });

  it("tells a live process from a reused pid", () => {
    const me = identify(process.pid)!;
    expect(readProcStat(process.pid)?.startTime).toBe(me.startTime);
    expect(checkIdentity(me)).toBe("same");
    expect(checkIdentity({ ...me, startTime: me.startTime + 1 })).toBe("gone");
    expect(checkIdentity({ ...me, bootId: "another-boot" })).toBe("gone");
  });
});

describe("releasers", () => {
  it("refuses paths outside beetroot's directories", () => {
    expect(() => assertUnderRoots("/", [paths.runDir])).toThrow(ReleaseRefusedError);
    expect(() => assertUnderRoots(paths.runDir, [paths.runDir])).toThrow(ReleaseRefusedError);
    expect(() => assertUnderRoots(`${paths.runDir}/../../etc`, [paths.runDir])).toThrow(ReleaseRefusedError);
    expect(assertUnderRoots(`${paths.runDir}/vm/x`, [paths.runDir])).toBe(`${paths.runDir}/vm/x`);
  });

  it("gc releases a dead owner's process (by pid or by marker), files and dirs, newest first", async () => {
    const marker = join(paths.runDir, "marker-sock");
    const byPid = spawn("sleep", ["300"], { stdio: "ignore" });
    const byMarker = spawn("sh", ["-c", "sleep 300", marker], { stdio: "ignore" });
    const dir = join(paths.runDir, "vm1");
    mkdirSync(dir);
    writeFileSync(join(dir, "console.log"), "x");

    const ledger = await openLedger("vm-e", paths);
    await ledger.record({ kind: "dir", path: dir }, "run-dir");
    await ledger.record({ kind: "file", path: join(dir, "console.log") }, "console");
    const id = identify(byPid.pid!)!;
    await ledger.record({ kind: "process", cmd: ["sleep", "300"], marker: "300", ...id }, "sleeper");
    await ledger.record(
      { kind: "process", cmd: ["sh", "-c", "sleep 300", marker], marker },
      "unspawned-update",
    );
    // The owner "crashes": its database is closed without releasing anything.
    expect(await ledger.close()).toEqual({ removed: false });

    const exits = [byPid, byMarker].map((c) => new Promise((r) => c.once("exit", (_code, sig) => r(sig))));
    const [sweep] = await collectGarbage({ paths, releasers: basicReleasers(), log });
    expect(sweep?.status).toBe("clean");
    expect(sweep?.released.map((r) => r.split(":")[0])).toEqual([
      "unspawned-update",
      "sleeper",
      "console",
      "run-dir",
    ]);
    expect(await Promise.all(exits)).toEqual(["SIGTERM", "SIGTERM"]);
    expect(existsSync(dir)).toBe(false);
    expect(listOwners(paths)).toEqual([]);
  });

  it("removes an owner directory that never became a database", async () => {
    const dir = join(paths.libDir, "ledger", "vm-g");
    mkdirSync(dir, { recursive: true });
    // Young: LevelDB may be creating it right now.
    expect(await collectGarbage({ paths, releasers: basicReleasers(), log })).toMatchObject([
      { owner: "vm-g", status: "alive" },
    ]);
    const old = new Date(Date.now() - 120_000);
    utimesSync(dir, old, old);
    expect(await collectGarbage({ paths, releasers: basicReleasers(), log })).toMatchObject([
      { owner: "vm-g", status: "clean" },
    ]);
    expect(listOwners(paths)).toEqual([]);
  });

  it("leaves an entry in place when its release fails, for the next gc", async () => {
    const ledger = await openLedger("vm-f", paths);
    await ledger.record({ kind: "dir", path: root }, "outside");
    await ledger.close();
    const [sweep] = await collectGarbage({ paths, releasers: basicReleasers(), log });
    expect(sweep?.status).toBe("partial");
    expect(sweep?.failed[0]?.error).toBe(
      `refusing to remove ${root}: not under ${paths.runDir} or ${paths.libDir} or ${paths.cacheDir}`,
    );
    expect(listOwners(paths)).toEqual(["vm-f"]);
    expect(existsSync(root)).toBe(true);
  });
});
