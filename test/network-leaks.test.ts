import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../internal/log/logger.ts";
import { loadConfList, parseConfText } from "../internal/network/cni/config.ts";
import type { NativeNet } from "../internal/network/native/addon.ts";
import { createNetwork } from "../internal/network/network.ts";
import { networkReleasers } from "../internal/network/releasers.ts";
import { NetworkError } from "../internal/rtnetlink/errors.ts";
import { collectGarbage } from "../internal/state/gc.ts";
import { listOwners, openLedger } from "../internal/state/ledger.ts";
import { basicReleasers } from "../internal/state/releasers.ts";
import { skipReason } from "./fixtures/skip.ts";
import {
  gcTestLedgers,
  leakSnapshot,
  missingNetworkCapability,
  native,
  scratchDir,
  type TestNetwork,
  testNetwork,
  withRtnl,
} from "./network-support.ts";

/**
 * Nothing leaks: create/delete cycles, a killed owner cleaned up by gc, and bad input that must
 * fail precisely without leaving anything half-configured. "Anything" is counted on the host:
 * pinned namespaces, host-local leases, iptables rules naming the container or network, veths
 * on the test bridge, TAP devices, and ledger entries.
 */
const reason = skipReason(import.meta.url, missingNetworkCapability());

const zero = { netns: 0, leases: 0, iptablesRules: 0, nftRules: 0, hostVethsOnBridge: 0 };
const paths = (libDir: string) => ({
  cacheDir: "",
  prefixDir: "",
  assetsDir: "",
  libDir,
  runDir: "",
  configFile: "",
});

async function tapCount(): Promise<number> {
  // TAPs live in pod namespaces, which must be gone; count any left in any namespace ip can see.
  const r = await execa(
    "bash",
    [
      "-c",
      "for ns in $(ip netns list | cut -d' ' -f1); do ip -n $ns -o link show type tun; done; ip -o link show type tun",
    ],
    { reject: false },
  );
  return r.stdout.split("\n").filter((l) => l.trim() !== "").length;
}

async function rejection(p: Promise<unknown>): Promise<NetworkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NetworkError) return err;
    throw err;
  }
  throw new Error("expected a rejection");
}

describe.skipIf(reason)("pod network leaves nothing behind", () => {
  let n: NativeNet;
  let net: TestNetwork;
  let libDir: string;
  let tapsBefore: number;

  beforeAll(async () => {
    n = await native();
    net = testNetwork("l", 20);
    libDir = scratchDir("leak-ledger");
    tapsBefore = await tapCount();
  });
  afterAll(async () => {
    // A failed test may have left resources: its ledger knows them, so gc them before the ledgers go.
    await gcTestLedgers(libDir);
    rmSync(libDir, { recursive: true, force: true });
    rmSync(net.confDir, { recursive: true, force: true });
  });

  it("30 create/delete cycles leave 0 TAPs, namespaces, leases, iptables rules and ledger entries", async () => {
    const ids: string[] = [];
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `nettest-cycle-${i}-${process.pid}`;
      ids.push(id);
      const ledger = await openLedger(`net-cycle-${i}`, { libDir });
      const network = createNetwork({ ledger, native: n, confList: net.conf });
      const t0 = performance.now();
      await network.setup(id, { kind: "managed" });
      const t1 = performance.now();
      await network.teardown();
      times.push(t1 - t0, performance.now() - t1);
      expect(await ledger.list()).toEqual([]);
      expect((await ledger.close()).removed).toBe(true);
    }
    const setups = times.filter((_, i) => i % 2 === 0);
    const teardowns = times.filter((_, i) => i % 2 === 1);
    const avg = (a: number[]) => (a.reduce((x, y) => x + y, 0) / a.length).toFixed(0);
    console.log(`30 cycles: setup avg ${avg(setups)} ms, teardown avg ${avg(teardowns)} ms`);
    expect(await leakSnapshot(net, ids)).toEqual(zero);
    expect(await tapCount()).toBe(tapsBefore);
    expect(listOwners({ libDir })).toEqual([]);
  });

  it("after kill -9 of the owner, gc releases its namespace, TAP, lease and rules", async () => {
    const cache = join(import.meta.dirname, "../node_modules/.cache/beetroot-test");
    mkdirSync(cache, { recursive: true });
    const worker = join(cache, `network-owner-${process.pid}.mjs`);
    await build({
      entryPoints: [join(import.meta.dirname, "network-fixtures/owner.ts")],
      outfile: worker,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      logLevel: "error",
    });
    const id = `nettest-crash-${process.pid}`;
    const child = spawn(process.execPath, [worker, libDir, "net-crash", net.confDir, id], {
      cwd: join(import.meta.dirname, ".."),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const made = await new Promise<{ netns: string; address: string }>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => {
        out += d.toString();
        if (out.includes("\n")) resolve(JSON.parse(out));
      });
      child.stderr.on("data", (d) => {
        err += d.toString();
      });
      child.on("exit", (c) => reject(new Error(`owner exited ${c}: ${err}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    rmSync(worker, { force: true });

    const left = await leakSnapshot(net, [id]);
    expect(left.netns).toBe(1);
    expect(left.leases).toBe(1);
    expect(left.iptablesRules).toBeGreaterThan(0);
    expect(left.nftRules).toBeGreaterThan(0);
    expect(made.address).toMatch(/^10\.124\.20\./);

    const log = createLogger({ fd: null });
    const sweeps = await collectGarbage({
      paths: paths(libDir),
      releasers: { ...basicReleasers(), ...networkReleasers() },
      log,
    });
    expect(sweeps.map((s) => [s.owner, s.status, s.failed])).toEqual([["net-crash", "clean", []]]);
    expect(sweeps[0]?.released.map((r) => r.split(":")[0])).toEqual(["tap", "cni", "netns"]);
    expect(await leakSnapshot(net, [id])).toEqual(zero);
    expect(await tapCount()).toBe(tapsBefore);
    expect(listOwners({ libDir })).toEqual([]);
  });

  it("a second setup of the same container is AlreadyExists and leaves the first one alone", async () => {
    const ledger = await openLedger("net-twice", { libDir });
    const id = `nettest-twice-${process.pid}`;
    const first = createNetwork({ ledger, native: n, confList: net.conf });
    const att = await first.setup(id, { kind: "managed" });
    try {
      const second = createNetwork({ ledger, native: n, confList: net.conf });
      const e = await rejection(second.setup(id, { kind: "managed" }));
      expect(e.code).toBe("AlreadyExists");
      expect(e.message).toBe(`network namespace ${att.netns} already exists`);
      expect((await ledger.list()).map((x) => x.resource.kind)).toEqual(["netns", "cni", "tap"]);
      expect(await leakSnapshot(net, [id])).toMatchObject({ netns: 1, leases: 1 });
      const stillThere = withRtnl(n, att.netns, (r) => r.link(att.nics[0]?.tap ?? ""));
      expect(stillThere?.kind).toBe("tun");
    } finally {
      await first.teardown();
    }
    expect(await ledger.list()).toEqual([]);
    await ledger.close();
    expect(await leakSnapshot(net, [id])).toEqual(zero);
  });

  it("a broken CNI configuration is a precise InvalidArgument", () => {
    const dir = scratchDir("broken-conf");
    try {
      writeFileSync(
        join(dir, "10-broken.conflist"),
        '{ "cniVersion": "1.0.0", "name": "x", "plugins": [ { "typo": 1 } ] }',
      );
      writeFileSync(join(dir, "20-good.conflist"), JSON.stringify(net.conf.list));
      expect(() => loadConfList(dir)).toThrow(
        /10-broken\.conflist: plugins\[0\]\.type undefined is not a plugin name/,
      );
      writeFileSync(join(dir, "10-broken.conflist"), "{ not json");
      expect(() => loadConfList(dir)).toThrow(/10-broken\.conflist: not valid JSON/);
      writeFileSync(
        join(dir, "10-broken.conflist"),
        '{ "cniVersion": "0.2.0", "name": "x", "plugins": [ { "type": "bridge" } ] }',
      );
      expect(() => loadConfList(dir)).toThrow(/cniVersion "0\.2\.0"; supported: 0\.3\.0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing plugin binary fails before anything is created", async () => {
    const ledger = await openLedger("net-missing", { libDir });
    const list = parseConfText(
      JSON.stringify({ ...net.conf.list, plugins: [...net.conf.list.plugins, { type: "no-such-plugin" }] }),
      "test",
      false,
    );
    const network = createNetwork({ ledger, native: n, confList: { list, source: "test" } });
    const e = await rejection(network.setup(`nettest-missing-${process.pid}`, { kind: "managed" }));
    expect(e.code).toBe("FailedPrecondition");
    expect(e.message).toMatch(/CNI plugin "no-such-plugin" not found in CNI_PATH/);
    expect(await ledger.list()).toEqual([]);
    await ledger.close();
    expect(await leakSnapshot(net, [])).toEqual(zero);
  });

  it("a plugin failing mid-chain rolls back the plugins before it", async () => {
    const ledger = await openLedger("net-midchain", { libDir });
    const id = `nettest-midchain-${process.pid}`;
    const list = parseConfText(
      JSON.stringify({
        ...net.conf.list,
        plugins: [
          ...net.conf.list.plugins,
          { type: "tuning", sysctl: { "net.ipv4.conf.eth0.no_such_knob": "1" } },
        ],
      }),
      "test",
      false,
    );
    const network = createNetwork({ ledger, native: n, confList: { list, source: "test" } });
    const e = await rejection(network.setup(id, { kind: "managed" }));
    expect(e.message).toMatch(/CNI ADD of network "beetroot-test-l" failed in plugin tuning/);
    expect(await ledger.list()).toEqual([]);
    await ledger.close();
    expect(await leakSnapshot(net, [id])).toEqual(zero);
  });

  it("an exhausted IP range is ResourceExhausted and the failed setup leaves nothing", async () => {
    const small = testNetwork("x", 21, { rangeEnd: "10.124.21.2" }); // .1 is the gateway: one address
    const first = createNetwork({
      ledger: await openLedger("net-full-1", { libDir }),
      native: n,
      confList: small.conf,
    });
    try {
      await first.setup(`nettest-full-1-${process.pid}`, { kind: "managed" });
      const id2 = `nettest-full-2-${process.pid}`;
      const withFirst = await leakSnapshot(small, [id2]);
      expect(withFirst).toMatchObject({ netns: 1, leases: 1, hostVethsOnBridge: 1 });
      const secondLedger = await openLedger("net-full-2", { libDir });
      const second = createNetwork({ ledger: secondLedger, native: n, confList: small.conf });
      const e = await rejection(second.setup(id2, { kind: "managed" }));
      expect(e.code).toBe("ResourceExhausted");
      expect(e.message).toMatch(/no IP addresses available/);
      expect(await secondLedger.list()).toEqual([]);
      await secondLedger.close();
      expect(await leakSnapshot(small, [id2])).toEqual(withFirst);
    } finally {
      await first.teardown();
      rmSync(small.confDir, { recursive: true, force: true });
    }
    expect(await leakSnapshot(small, [])).toEqual(zero);
  });
});
