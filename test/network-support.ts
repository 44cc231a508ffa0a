import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { createLogger } from "../internal/log/logger.ts";
import { type LoadedConfList, parseConfText } from "../internal/network/cni/config.ts";
import { CniRuntime } from "../internal/network/cni/invoke.ts";
import { loadNativeNet, type NativeNet } from "../internal/network/native/addon.ts";
import { NETNS_DIR } from "../internal/network/netns.ts";
import { networkReleasers } from "../internal/network/releasers.ts";
import { Rtnl } from "../internal/rtnetlink/rtnl.ts";
import { collectGarbage } from "../internal/state/gc.ts";
import { basicReleasers } from "../internal/state/releasers.ts";
import { type Missing, setupMissing } from "./fixtures/skip.ts";

/**
 * Shared pieces of the network integration tests: private CNI networks (own bridge, own
 * 10.x range, own IPAM directory), the "VM stand-in" (QEMU with no guest, whose built-in hub
 * joins the pod TAP to a second TAP in a "guest" namespace), and leak counters.
 */
export function missingNetworkCapability(): Missing | undefined {
  if (process.getuid?.() !== 0)
    return setupMissing("needs root (netns, CNI, TAP): the test command runs as root");
  if (!existsSync("/dev/net/tun")) return { cause: "hardware", reason: "no /dev/net/tun on this machine" };
  try {
    new CniRuntime().checkPlugins({
      cniVersion: "1.0.0",
      name: "x",
      plugins: [{ type: "bridge" }, { type: "host-local" }, { type: "portmap" }],
    });
  } catch (err) {
    return setupMissing((err as Error).message);
  }
  return undefined;
}

export function qemuBinary(): string | undefined {
  for (const p of ["/usr/bin/qemu-system-x86_64"]) if (existsSync(p)) return p;
  return undefined;
}

export interface TestNetwork {
  readonly name: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly confDir: string;
  readonly conf: LoadedConfList;
  readonly ipamDir: string;
}

/** A conflist like the embedded default, on a private bridge and range, with DNS set so results carry it. */
export function testNetwork(
  tag: string,
  third: number,
  opts: { rangeEnd?: string; dns?: boolean; mask?: number } = {},
): TestNetwork {
  const name = `beetroot-test-${tag}`;
  const bridge = `btst${tag}`.slice(0, 15);
  const subnet = `10.124.${third}.0/${opts.mask ?? 24}`;
  const gateway = `10.124.${third}.1`;
  const confDir = mkdtempSync(join(tmpdir(), `beetroot-cni-${tag}-`));
  const range: Record<string, string> = { subnet };
  if (opts.rangeEnd) range.rangeEnd = opts.rangeEnd;
  const conf = {
    cniVersion: "1.0.0",
    name,
    plugins: [
      {
        type: "bridge",
        bridge,
        isGateway: true,
        ipMasq: true,
        ipam: { type: "host-local", ranges: [[range]], routes: [{ dst: "0.0.0.0/0" }] },
        ...(opts.dns !== false && {
          dns: { nameservers: ["10.124.0.53"], search: ["pod.test"], options: ["ndots:2"] },
        }),
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  const text = JSON.stringify(conf, null, 2);
  writeFileSync(join(confDir, "10-test.conflist"), text);
  return {
    name,
    bridge,
    subnet,
    gateway,
    confDir,
    conf: { list: parseConfText(text, "test", false), source: join(confDir, "10-test.conflist") },
    ipamDir: join("/var/lib/cni/networks", name),
  };
}

const listNetns = (): string[] =>
  existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR).filter((n) => n.startsWith("beetroot-")) : [];
/**
 * Namespaces that were there before this test file ran (a crashed run elsewhere on a shared host;
 * `beetroot gc` releases them): not this file's leaks.
 */
const preexistingNetns = new Set(listNetns());

/** Everything a leak could be, counted for one test network. */
export async function leakSnapshot(
  net: TestNetwork,
  ids: readonly string[],
): Promise<Record<string, number>> {
  const netns = listNetns().filter((n) => !preexistingNetns.has(n)).length;
  const leases = existsSync(net.ipamDir)
    ? readdirSync(net.ipamDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length
    : 0;
  const rules = (await execa("iptables-save", [], { reject: false })).stdout.split("\n");
  const idRules = rules.filter((l) => ids.some((id) => l.includes(id)) || l.includes(net.name)).length;
  // nft shows iptables-nft rules without their comments: count the ones naming the test range.
  const nft = (await execa("nft", ["list", "ruleset"], { reject: false })).stdout.split("\n");
  const rangePrefix = net.subnet.split(".").slice(0, 3).join(".");
  const nftRules = nft.filter((l) => l.includes(`${rangePrefix}.`)).length;
  const links = (await execa("ip", ["-o", "link", "show"])).stdout.split("\n");
  const hostVeths = links.filter((l) => l.includes(`master ${net.bridge}`)).length;
  return { netns, leases, iptablesRules: idRules, nftRules, hostVethsOnBridge: hostVeths };
}

/** Runs a command inside a namespace (test tooling only; the product never shells out for this). */
export function nsExec(netns: string, cmd: string, args: string[], opts: { timeout?: number } = {}) {
  return execa("nsenter", [`--net=${netns}`, cmd, ...args], {
    reject: false,
    timeout: opts.timeout ?? 20_000,
  });
}

export function nsSpawn(netns: string, cmd: string, args: string[]): ChildProcess {
  return spawn("nsenter", [`--net=${netns}`, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * The VM stand-in: QEMU without a guest (-machine none) whose hub joins the pod TAP (podFd) to a
 * "guest" TAP (guestFd). QEMU gets the pod TAP exactly as the real launcher hands it over.
 */
export function startHub(podFd: number, guestFd: number): ChildProcess {
  const qemu = qemuBinary();
  if (!qemu) throw new Error("qemu-system-x86_64 is missing");
  return spawn(
    qemu,
    [
      "-machine",
      "none",
      "-nodefaults",
      "-display",
      "none",
      "-monitor",
      "none",
      "-serial",
      "none",
      "-netdev",
      "tap,id=pod,fd=3,vhost=off",
      "-netdev",
      "tap,id=vm,fd=4,vhost=off",
      "-netdev",
      "hubport,id=h0,hubid=0,netdev=pod",
      "-netdev",
      "hubport,id=h1,hubid=0,netdev=vm",
    ],
    { stdio: ["ignore", "ignore", "pipe", podFd, guestFd] },
  );
}

export async function native(): Promise<NativeNet> {
  return loadNativeNet();
}

export function withRtnl<T>(n: NativeNet, netns: string, fn: (r: Rtnl) => T): T {
  return Rtnl.with(n, netns, fn);
}

export function scratchDir(tag: string): string {
  const d = mkdtempSync(join(tmpdir(), `beetroot-net-${tag}-`));
  mkdirSync(d, { recursive: true });
  return d;
}

/** Releases whatever the test ledgers under libDir still list (after a failed test). */
export async function gcTestLedgers(libDir: string): Promise<void> {
  const sweeps = await collectGarbage({
    paths: { cacheDir: "", prefixDir: "", assetsDir: "", libDir, runDir: "", configFile: "" },
    releasers: { ...basicReleasers(), ...networkReleasers() },
    log: createLogger({ fd: null }),
  });
  const failed = sweeps.flatMap((s) => s.failed);
  if (failed.length > 0) console.warn(`test gc could not release: ${JSON.stringify(failed)}`);
}
