/**
 * `beetroot bench net [--json] [--mib N] [--vm-mib N] [--rtt N] [--cycles N] [--no-vm]`
 *
 * Host ↔ container TCP over the pod network, on private addresses of this machine only:
 *
 * - setup/teardown: managed mode end to end (netns, CNI bridge + host-local + portmap, TAP, tc);
 * - veth: a server straight in a CNI namespace, no VM path (the floor the others are compared to);
 * - tap+qemu: the VM NIC path with a stand-in VM (QEMU's hub to a TAP in a "guest" namespace);
 * - vm: a real micro-VM on the TAP. `beetroot bench net` runs internal/vm/bench-net.ts, which boots
 *   the beetroot guest image (vminitd configures the NIC, the servers run in a crun container);
 *   without a guest image, a busybox initramfs on the beetroot kernel stands in.
 *
 * Throughput is host → container bulk TCP into a sink that answers with the byte count; RTT is
 * one-byte request/response on one connection (median and p99 after 10 warm-up exchanges).
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { beetrootPaths } from "../../config/paths.ts";
import { loadHostDeps } from "../../hostdeps/index.ts";
import { hostTscKhz, kernelArtifact } from "../../kernel/index.ts";
import { applyGuestNetworkConfig } from "../../rtnetlink/apply-netconfig.ts";
import { Rtnl } from "../../rtnetlink/rtnl.ts";
import { type Ledger, openLedger } from "../../state/ledger.ts";
import { embeddedConfList, type LoadedConfList, parseConfList } from "../cni/config.ts";
import { CniRuntime } from "../cni/invoke.ts";
import { loadNativeNet, type NativeNet } from "../native/addon.ts";
import { createNetns, removeNetns } from "../netns.ts";
import { createNetwork, type NetworkAttachment } from "../network.ts";
import { openTap } from "../tap.ts";
import { bootBusyboxVm, ECHO_PORT, SINK_PORT } from "./busybox-vm.ts";
import {
  measureRoundTrips,
  measureThroughput,
  nodeServersScript,
  type RoundTrips,
  type Throughput,
} from "./measure.ts";
import { startTapHub } from "./standin.ts";

interface Options {
  json: boolean;
  mib: number;
  vmMib: number;
  rtt: number;
  cycles: number;
  vm: boolean;
}

export interface PathResult {
  readonly path: "veth" | "tap+qemu" | "vm";
  readonly throughput?: Throughput;
  readonly rtt?: RoundTrips;
  readonly note?: string;
}

/**
 * A VM row measured by a layer above this one (internal/vm boots the real guest image; this folder
 * may not import the launcher). Returns undefined to fall back to the busybox stand-in VM.
 */
export type VmRowBench = (
  conf: LoadedConfList,
  o: { readonly vmMib: number; readonly rtt: number },
) => Promise<PathResult | undefined>;

export interface NetBenchResult {
  readonly setupMs: { readonly median: number; readonly max: number };
  readonly teardownMs: { readonly median: number; readonly max: number };
  readonly paths: readonly PathResult[];
  readonly accel: "tcg";
}

function parseArgs(args: string[]): Options | string {
  const o: Options = { json: false, mib: 64, vmMib: 16, rtt: 500, cycles: 5, vm: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const num = () => {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    try {
      if (a === "--json") o.json = true;
      else if (a === "--mib") o.mib = num();
      else if (a === "--vm-mib") o.vmMib = num();
      else if (a === "--rtt") o.rtt = num();
      else if (a === "--cycles") o.cycles = num();
      else if (a === "--no-vm") o.vm = false;
      else return `unknown argument ${a}`;
    } catch (err) {
      return (err as Error).message;
    }
  }
  return o;
}

/** The embedded default network, renamed onto its own bridge and range so the bench touches nothing else. */
export function benchConfList(): LoadedConfList {
  const base = embeddedConfList().list;
  const plugins = base.plugins.map((p) =>
    p.type === "bridge"
      ? {
          ...p,
          bridge: "btbench0",
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: "10.124.250.0/24" }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        }
      : p,
  );
  return {
    list: parseConfList({ ...base, name: "beetroot-bench", plugins }, "bench"),
    source: "bench (embedded default on 10.124.250.0/24)",
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

function waitReady(p: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error(`server not ready: ${out}`)), 15_000);
    p.stdout?.on("data", (d) => {
      out += d.toString();
      if (out.includes("ready")) {
        clearTimeout(t);
        resolve();
      }
    });
    p.stderr?.on("data", (d) => {
      out += d.toString();
    });
    p.once("exit", (c) => {
      clearTimeout(t);
      reject(new Error(`server exited ${c}: ${out}`));
    });
  });
}

/** Node sink+echo servers inside a namespace (measurement tooling: nsenter runs node there). */
async function serversIn(netns: string, port: number): Promise<ChildProcess> {
  const p = spawn("nsenter", [`--net=${netns}`, process.execPath, "-e", nodeServersScript(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  await waitReady(p);
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill("SIGKILL");
  await new Promise((r) => p.once("exit", r));
}

const addressOf = (att: NetworkAttachment) =>
  (att.guestConfig.interfaces[0]?.addresses[0] ?? "").split("/")[0] ?? "";

async function benchVeth(n: NativeNet, conf: LoadedConfList, o: Options): Promise<PathResult> {
  const ns = `/run/netns/btbench-veth-${process.pid}`;
  const id = `bench-veth-${process.pid}`;
  const cni = new CniRuntime();
  createNetns(n, ns);
  try {
    const r = await cni.add(conf.list, { containerId: id, netns: ns, ifname: "eth0" });
    try {
      const ip = (r.ips[0]?.address ?? "").split("/")[0] ?? "";
      const srv = await serversIn(ns, 7001);
      try {
        return {
          path: "veth",
          throughput: await measureThroughput(ip, 7001, o.mib * 1048576),
          rtt: await measureRoundTrips(ip, 7002, o.rtt),
        };
      } finally {
        await stop(srv);
      }
    } finally {
      await cni.del(conf.list, { containerId: id, netns: ns, ifname: "eth0" });
    }
  } finally {
    removeNetns(n, ns);
  }
}

async function benchStandIn(
  n: NativeNet,
  ledger: Ledger,
  conf: LoadedConfList,
  o: Options,
  qemu: string,
): Promise<PathResult> {
  const network = createNetwork({ ledger, native: n, confList: conf });
  const att = await network.setup(`bench-standin-${process.pid}`, { kind: "managed" });
  const guestNs = `/run/netns/btbench-guest-${process.pid}`;
  try {
    const nic = att.nics[0];
    if (!nic) throw new Error("no NIC");
    createNetns(n, guestNs);
    const tap = openTap(n, guestNs, "vmnic0", { vnetHdr: false });
    Rtnl.with(n, guestNs, (r) => {
      const l = r.link("vmnic0");
      if (!l) throw new Error("stand-in guest TAP missing");
      r.setMac(l, nic.mac);
      applyGuestNetworkConfig(r, att.guestConfig);
    });
    const hub = startTapHub(qemu, nic.fd, tap.fd);
    n.close(tap.fd);
    network.closeTapFds();
    try {
      const srv = await serversIn(guestNs, 7001);
      try {
        const ip = addressOf(att);
        return {
          path: "tap+qemu",
          throughput: await measureThroughput(ip, 7001, o.mib * 1048576),
          rtt: await measureRoundTrips(ip, 7002, o.rtt),
        };
      } finally {
        await stop(srv);
      }
    } finally {
      await stop(hub);
    }
  } finally {
    removeNetns(n, guestNs);
    await network.teardown();
  }
}

async function benchVm(n: NativeNet, ledger: Ledger, conf: LoadedConfList, o: Options): Promise<PathResult> {
  let vmlinux: string;
  let deps: ReturnType<typeof loadHostDeps>;
  try {
    vmlinux = kernelArtifact().vmlinux;
    deps = loadHostDeps();
  } catch (err) {
    return { path: "vm", note: `skipped: ${(err as Error).message}` };
  }
  const network = createNetwork({ ledger, native: n, confList: conf });
  const att = await network.setup(`bench-vm-${process.pid}`, { kind: "managed" });
  try {
    const nic = att.nics[0];
    if (!nic) throw new Error("no NIC");
    const tsc = await hostTscKhz().catch(() => undefined);
    const vm = await bootBusyboxVm({
      qemu: deps.qemu,
      busybox: deps.busyboxStatic,
      vmlinux,
      tscKhz: tsc?.khz,
      nic,
      config: att.guestConfig,
    });
    network.closeTapFds();
    try {
      const ip = addressOf(att);
      return {
        path: "vm",
        throughput: await measureThroughput(ip, SINK_PORT, o.vmMib * 1048576),
        rtt: await measureRoundTrips(ip, ECHO_PORT, Math.min(o.rtt, 200)),
        note: `stand-in guest (busybox initramfs configured by busybox ip, busybox nc; no vminitd), TCG, 2 vCPUs; booted in ${vm.bootSeconds.toFixed(2)} s`,
      };
    } finally {
      await vm.stop();
    }
  } finally {
    await network.teardown();
  }
}

export async function runNetBench(
  o: Options,
  log: (line: string) => void = () => undefined,
  vmRow?: VmRowBench,
): Promise<NetBenchResult> {
  const n = await loadNativeNet();
  const conf = benchConfList();
  const ledger = await openLedger(`bench-net-${process.pid}`, beetrootPaths());
  try {
    const setups: number[] = [];
    const teardowns: number[] = [];
    for (let i = 0; i < o.cycles; i++) {
      const network = createNetwork({ ledger, native: n, confList: conf });
      const t0 = performance.now();
      await network.setup(`bench-cycle-${i}-${process.pid}`, { kind: "managed" });
      const t1 = performance.now();
      await network.teardown();
      setups.push(t1 - t0);
      teardowns.push(performance.now() - t1);
    }
    log(`setup median ${median(setups).toFixed(0)} ms, teardown median ${median(teardowns).toFixed(0)} ms`);
    const paths: PathResult[] = [];
    paths.push(await benchVeth(n, conf, o));
    log("veth done");
    const qemu = (() => {
      try {
        return loadHostDeps().qemu;
      } catch {
        return "/usr/bin/qemu-system-x86_64";
      }
    })();
    paths.push(await benchStandIn(n, ledger, conf, o, qemu));
    log("tap+qemu done");
    if (o.vm) paths.push((await vmRow?.(conf, o)) ?? (await benchVm(n, ledger, conf, o)));
    return {
      setupMs: { median: median(setups), max: Math.max(...setups) },
      teardownMs: { median: median(teardowns), max: Math.max(...teardowns) },
      paths,
      accel: "tcg",
    };
  } finally {
    await ledger.close();
  }
}

export async function main(args: string[], vmRow?: VmRowBench): Promise<number> {
  const o = parseArgs(args);
  if (typeof o === "string") {
    process.stderr.write(`beetroot bench net: ${o}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write("beetroot bench net: needs root (network namespaces, CNI, TAP)\n");
    return 1;
  }
  const r = await runNetBench(o, o.json ? undefined : (l) => process.stderr.write(`  ${l}\n`), vmRow);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return 0;
  }
  const lines = [
    `pod network setup (netns + CNI + TAP + tc): median ${r.setupMs.median.toFixed(0)} ms, max ${r.setupMs.max.toFixed(0)} ms`,
    `pod network teardown: median ${r.teardownMs.median.toFixed(0)} ms, max ${r.teardownMs.max.toFixed(0)} ms`,
    "",
    `${"path".padEnd(10)} ${"host→ctr MiB/s".padStart(15)} ${"RTT p50 µs".padStart(11)} ${"RTT p99 µs".padStart(11)}`,
  ];
  for (const p of r.paths) {
    if (!p.throughput || !p.rtt) {
      lines.push(`${p.path.padEnd(10)} ${p.note ?? ""}`);
      continue;
    }
    lines.push(
      `${p.path.padEnd(10)} ${p.throughput.mibPerSecond.toFixed(1).padStart(15)} ${p.rtt.medianUs.toFixed(0).padStart(11)} ${p.rtt.p99Us.toFixed(0).padStart(11)}${p.note ? `  (${p.note})` : ""}`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}
