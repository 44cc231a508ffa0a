import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CniRuntime } from "../internal/network/cni/invoke.ts";
import type { NativeNet } from "../internal/network/native/addon.ts";
import { createNetns, removeNetns } from "../internal/network/netns.ts";
import { createNetwork, type NetworkAttachment, netnsRequestFromSpec } from "../internal/network/network.ts";
import { openTap } from "../internal/network/tap.ts";
import { applyGuestNetworkConfig } from "../internal/rtnetlink/apply-netconfig.ts";
import { NetworkError } from "../internal/rtnetlink/errors.ts";
import { networkOf, parsePrefix } from "../internal/rtnetlink/ip.ts";
import { renderResolvConf } from "../internal/rtnetlink/netconfig.ts";
import { type Ledger, openLedger } from "../internal/state/ledger.ts";
import { setupMissing, skipReason } from "./fixtures/skip.ts";
import {
  gcTestLedgers,
  leakSnapshot,
  missingNetworkCapability,
  native,
  nsExec,
  nsSpawn,
  qemuBinary,
  scratchDir,
  startHub,
  type TestNetwork,
  testNetwork,
  withRtnl,
} from "./network-support.ts";

/**
 * The pod network end to end on this machine's own private addresses: CNI bridge + host-local
 * into a namespace beetroot creates, a TAP spliced onto eth0 with tc, and a "VM" on the TAP.
 * Until a VM boots here, the VM is a stand-in: QEMU (-machine none) holding the TAP descriptor
 * exactly as the launcher hands it over, its hub joining it to a TAP in a "guest" namespace
 * configured from the guest config with the same rtnetlink code the guest runs.
 */
const reason = skipReason(
  import.meta.url,
  missingNetworkCapability(),
  setupMissing(qemuBinary() ? undefined : "qemu-system-x86_64 is missing"),
);

const zero = { netns: 0, leases: 0, iptablesRules: 0, nftRules: 0, hostVethsOnBridge: 0 };

function request(host: string, port: number, payload = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: 10_000 });
    let data = "";
    s.on("connect", () => s.end(payload));
    s.on("data", (d) => {
      data += d.toString();
    });
    s.on("end", () => resolve(data));
    s.on("timeout", () => s.destroy(new Error(`timeout talking to ${host}:${port}`)));
    s.on("error", reject);
  });
}

function waitForLine(p: ChildProcess, needle: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error(`no "${needle}" in ${out}`)), 15_000);
    p.stdout?.on("data", (d) => {
      out += d.toString();
      if (out.includes(needle)) {
        clearTimeout(t);
        resolve();
      }
    });
    p.on("exit", (c) => reject(new Error(`exited ${c} before "${needle}": ${out}`)));
  });
}

/** A stand-in VM on nic 0 of an attachment: returns its namespace and a stop function. */
async function standInVm(n: NativeNet, att: NetworkAttachment, tag: string) {
  const guestNs = `/run/netns/btest-guest-${tag}-${process.pid}`;
  createNetns(n, guestNs);
  const nic = att.nics[0];
  if (!nic) throw new Error("no NIC");
  const guestTap = openTap(n, guestNs, "vmnic0", { vnetHdr: false });
  // QEMU's `-device virtio-net-device,mac=` gives the guest NIC the pod MAC; the stand-in sets it itself.
  withRtnl(n, guestNs, (r) => {
    const l = r.link("vmnic0");
    if (!l) throw new Error("guest tap missing");
    r.setMac(l, nic.mac);
    applyGuestNetworkConfig(r, att.guestConfig);
  });
  const hub = startHub(nic.fd, guestTap.fd);
  n.close(guestTap.fd);
  return {
    guestNs,
    async stop() {
      hub.kill("SIGKILL");
      await new Promise((r) => hub.once("exit", r));
      removeNetns(n, guestNs);
    },
  };
}

describe.skipIf(reason)("pod network (managed mode, CNI + TAP + tc redirect)", () => {
  let n: NativeNet;
  let net: TestNetwork;
  let libDir: string;
  const ledgers: Ledger[] = [];
  const ledger = async (owner: string) => {
    const l = await openLedger(owner, { libDir });
    ledgers.push(l);
    return l;
  };

  beforeAll(async () => {
    n = await native();
    net = testNetwork("m", 10);
    libDir = scratchDir("ledger");
  });
  afterAll(async () => {
    for (const l of ledgers) await l.close().catch(() => undefined);
    // A failed test may have left resources: its ledger knows them, so gc them before the ledgers go.
    await gcTestLedgers(libDir);
    rmSync(libDir, { recursive: true, force: true });
    rmSync(net.confDir, { recursive: true, force: true });
  });

  it("gives the container its CNI address, a gateway it can ping, TCP the host reaches, DNS from the CNI result", async () => {
    const l = await ledger("net-e2e");
    const network = createNetwork({ ledger: l, native: n, confList: net.conf });
    const id = `nettest-e2e-${process.pid}`;
    const att = await network.setup(
      id,
      netnsRequestFromSpec({ linux: { namespaces: [{ type: "network" }] } }),
    );
    try {
      expect(att.mode).toBe("managed");
      expect(att.nics).toHaveLength(1);
      const iface = att.guestConfig.interfaces[0];
      if (!iface) throw new Error("no guest interface");
      const addr = iface.addresses[0] ?? "";
      expect(networkOf(parsePrefix(addr))).toEqual(parsePrefix(net.subnet));
      expect(att.cniResult?.ips.map((i) => i.address)).toEqual([addr]);
      expect(att.guestConfig.routes).toContainEqual({
        dst: "0.0.0.0/0",
        gateway: net.gateway,
        interface: "eth0",
      });
      // The guest NIC gets eth0's MAC and MTU; the TAP has the same MTU.
      const { eth0, tap, filters } = withRtnl(n, att.netns, (r) => {
        const eth0 = r.link("eth0");
        const tap = r.link(att.nics[0]?.tap ?? "");
        if (!eth0 || !tap) throw new Error("eth0 or tap missing");
        return { eth0, tap, filters: { eth0: r.ingressFilters(eth0), tap: r.ingressFilters(tap) } };
      });
      expect(iface).toMatchObject({ name: "eth0", mac: eth0.mac, mtu: eth0.mtu });
      expect(tap.mtu).toBe(eth0.mtu);
      expect(tap.kind).toBe("tun");
      expect(filters.eth0.map((f) => f.redirectTo).filter(Boolean)).toEqual([tap.index]);
      expect(filters.tap.map((f) => f.redirectTo).filter(Boolean)).toEqual([eth0.index]);
      expect(att.guestConfig.dns).toEqual({
        nameservers: ["10.124.0.53"],
        search: ["pod.test"],
        options: ["ndots:2"],
      });
      expect(renderResolvConf(att.guestConfig.dns)).toBe(
        "# written by beetroot from the pod network's DNS settings\nnameserver 10.124.0.53\nsearch pod.test\noptions ndots:2\n",
      );
      expect((await l.list()).map((e) => e.resource.kind)).toEqual(["netns", "cni", "tap"]);
      // CNI CHECK with the ADD result still passes with the TAP spliced in (eth0 keeps its state).
      if (!att.cniResult) throw new Error("no CNI result");
      await new CniRuntime().check(
        net.conf.list,
        { containerId: id, netns: att.netns, ifname: "eth0" },
        att.cniResult,
      );

      const vm = await standInVm(n, att, "e2e");
      try {
        network.closeTapFds();
        const ping = await nsExec(vm.guestNs, "busybox", ["ping", "-c", "3", "-W", "3", net.gateway]);
        expect(ping.stdout).toMatch(/3 packets received/);
        const podIp = addr.split("/")[0] ?? "";
        const server = nsSpawn(vm.guestNs, process.execPath, [
          "-e",
          "require('net').createServer(s=>{let b='';s.on('data',d=>b+=d);s.on('end',()=>s.end('pod got '+b))}).listen(8080,'0.0.0.0',()=>console.log('ready'))",
        ]);
        try {
          await waitForLine(server, "ready");
          expect(await request(podIp, 8080, "hello")).toBe("pod got hello");
        } finally {
          server.kill("SIGKILL");
        }
      } finally {
        await vm.stop();
      }
    } finally {
      await network.teardown();
    }
    expect(await l.list()).toEqual([]);
    expect(await leakSnapshot(net, [id])).toEqual(zero);
  });

  it("gives 10 parallel setups distinct addresses and releases them all", async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `nettest-par-${i}-${process.pid}`);
    const networks = await Promise.all(
      ids.map(async (_id, i) =>
        createNetwork({ ledger: await ledger(`net-par-${i}`), native: n, confList: net.conf }),
      ),
    );
    const started = performance.now();
    const settled = await Promise.allSettled(
      networks.map((nw, i) => nw.setup(ids[i] ?? "", { kind: "managed" })),
    );
    console.log(`10 parallel managed setups: ${(performance.now() - started).toFixed(0)} ms`);
    try {
      const atts = settled.map((s) => {
        if (s.status === "rejected") throw s.reason;
        return s.value;
      });
      const addrs = atts.map((a) => a.guestConfig.interfaces[0]?.addresses[0]);
      expect(new Set(addrs).size).toBe(10);
      expect(new Set(atts.map((a) => a.netns)).size).toBe(10);
      expect(new Set(atts.map((a) => a.nics[0]?.mac)).size).toBe(10);
      expect((await leakSnapshot(net, ids)).leases).toBe(10);
    } finally {
      await Promise.all(networks.map((nw) => nw.teardown()));
    }
    expect(await leakSnapshot(net, ids)).toEqual(zero);
  });

  it("attach mode: uses the namespace CRI configured, runs no CNI, and leaves it as it found it", async () => {
    // Play CRI: a pinned namespace with CNI already run in it.
    const podNs = `/run/netns/btest-cri-${process.pid}`;
    const criId = `nettest-cri-${process.pid}`;
    createNetns(n, podNs);
    const cni = new CniRuntime();
    const criResult = await cni.add(net.conf.list, { containerId: criId, netns: podNs, ifname: "eth0" });
    try {
      const before = withRtnl(n, podNs, (r) => ({
        links: r.links().length,
        addrs: r.addresses().length,
        qd: r.qdiscs().filter((q) => q.kind === "ingress").length,
      }));
      const network = createNetwork({ ledger: await ledger("net-attach"), native: n, confList: net.conf });
      const att = await network.setup(
        criId,
        netnsRequestFromSpec({ linux: { namespaces: [{ type: "network", path: podNs }] } }),
      );
      expect(att.mode).toBe("attach");
      expect(att.cniResult).toBeUndefined();
      expect(att.guestConfig.interfaces[0]?.addresses).toEqual(criResult.ips.map((i) => i.address));
      expect(att.guestConfig.dns).toEqual({ nameservers: [], search: [], options: [] });
      expect((await leakSnapshot(net, [criId])).leases).toBe(1);
      const vm = await standInVm(n, att, "attach");
      try {
        const ping = await nsExec(vm.guestNs, "busybox", ["ping", "-c", "2", "-W", "3", net.gateway]);
        expect(ping.stdout).toMatch(/2 packets received/);
      } finally {
        await vm.stop();
      }
      await network.teardown();
      const after = withRtnl(n, podNs, (r) => ({
        links: r.links().length,
        addrs: r.addresses().length,
        qd: r.qdiscs().filter((q) => q.kind === "ingress").length,
      }));
      expect(after).toEqual(before);
    } finally {
      await cni.del(net.conf.list, { containerId: criId, netns: podNs, ifname: "eth0" });
      removeNetns(n, podNs);
    }
    expect(await leakSnapshot(net, [criId])).toEqual(zero);
  });

  it("refuses host networking with InvalidArgument and a reason", () => {
    let err: unknown;
    try {
      netnsRequestFromSpec({ linux: { namespaces: [{ type: "pid" }, { type: "mount" }] } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).code).toBe("InvalidArgument");
    expect((err as Error).message).toMatch(/host's network/);
  });
});
