import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { System } from "../api/gen/beetroot/guest/v1/system_pb.ts";
import { allReleasers } from "../internal/cleanup/releasers.ts";
import { createLogger } from "../internal/log/logger.ts";
import { measureRoundTrips, measureThroughput } from "../internal/network/bench/measure.ts";
import { embeddedConfList, parseConfList } from "../internal/network/cni/config.ts";
import { CniRuntime } from "../internal/network/cni/invoke.ts";
import { createNetns, removeNetns } from "../internal/network/netns.ts";
import { collectGarbage } from "../internal/state/gc.ts";
import { busyboxServersDisk, ECHO_PORT, SINK_PORT, startGuestServers } from "../internal/vm/guest-servers.ts";
import { launchPodVm } from "../internal/vm/pod-network.ts";
import type { DiskSpec } from "../internal/vm/qemu-args.ts";
import { skipReason } from "./fixtures/skip.ts";
import {
  leakSnapshot,
  missingNetworkCapability,
  native,
  type TestNetwork,
  withRtnl,
} from "./network-support.ts";
import { leftovers, missingVmAssets, NOTHING_LEFT, type VmTestEnv, vmTestEnv } from "./vm-support.ts";

/**
 * The pod network wired to a real beetroot VM: the guest image with vminitd, a managed-mode pod
 * network (the embedded CNI conflist — bridge, host-local, portmap — on a private bridge and
 * range), the TAP descriptor handed to QEMU, System.ConfigureNetwork applying the pod's address
 * and routes through Bun FFI netlink. Proved from the host: the guest kernel's own view, TCP to
 * the guest's kernel (a refused port), TCP into a container in the VM (busybox nc run by crun),
 * and nothing left after stop — TAP, namespace, IPAM lease, iptables rules, ledger, processes.
 */
const reason = skipReason(import.meta.url, missingNetworkCapability(), missingVmAssets());

const log = createLogger({ fd: process.env.BEETROOT_TEST_LOG ? 2 : null, level: "debug" });

/** The embedded default network, renamed onto its own bridge and range, with DNS so resolv.conf has content. */
function podNetwork(): TestNetwork {
  const base = embeddedConfList().list;
  const name = "beetroot-test-vn";
  const subnet = "10.124.40.0/24";
  const plugins = base.plugins.map((p) =>
    p.type === "bridge"
      ? {
          ...p,
          bridge: "btstvn",
          ipam: { type: "host-local", ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }] },
          dns: { nameservers: ["10.124.0.53"], search: ["pod.test"], options: ["ndots:2"] },
        }
      : p,
  );
  return {
    name,
    bridge: "btstvn",
    subnet,
    gateway: "10.124.40.1",
    confDir: "",
    conf: {
      list: parseConfList({ ...base, name, plugins }, "test"),
      source: "embedded default on 10.124.40.0/24",
    },
    ipamDir: join("/var/lib/cni/networks", name),
  };
}

/** TCP to a port nothing listens on: the guest kernel's RST (ECONNREFUSED) proves the path both ways. */
function connectError(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve("timeout");
    }, 10_000);
    s.once("connect", () => {
      clearTimeout(t);
      s.destroy();
      resolve("connected");
    });
    s.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code ?? e.message);
    });
  });
}

/** This process' descriptors of /dev/net/tun (TAPs): none once QEMU holds them. */
function ownTunFds(): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === "/dev/net/tun";
    } catch {
      return false;
    }
  }).length;
}

const managedSpec = { linux: { namespaces: [{ type: "pid" }, { type: "network" }] } };

describe.skipIf(reason)("a real beetroot VM on a managed pod network", () => {
  let env: VmTestEnv;
  let net: TestNetwork;
  let dir: string;
  let disk: DiskSpec;
  beforeAll(async () => {
    env = await vmTestEnv();
    net = podNetwork();
    dir = mkdtempSync(join(tmpdir(), "bvn-"));
    disk = await busyboxServersDisk(dir, {
      busybox: env.host.deps.busyboxStatic,
      mkfsErofs: env.host.deps.mkfsErofs,
    });
  });
  afterAll(async () => {
    if (env) {
      const sweeps = await collectGarbage({ paths: env.paths, releasers: allReleasers(), log });
      const failed = sweeps.flatMap((s) => s.failed);
      if (failed.length > 0) console.warn(`test gc could not release: ${JSON.stringify(failed)}`);
      env.cleanup();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("configures the guest from the pod network, serves TCP to the host, and leaves nothing", async () => {
    const id = `vn-${process.pid}`;
    const tunFdsBefore = ownTunFds();
    const t0 = performance.now();
    const pod = await launchPodVm({
      vmm: env.host.vmm,
      spec: env.host.spec(id, { disks: [disk] }),
      ociSpec: managedSpec,
      containerId: id,
      paths: env.paths,
      log,
      network: { confList: net.conf },
    });
    const launchMs = performance.now() - t0;
    let stopped = false;
    try {
      const att = pod.network.attachment;
      expect(att.mode).toBe("managed");
      const nic = pod.network.nics[0];
      if (!nic) throw new Error("no NIC");
      const cidr = att.cniResult?.ips[0]?.address ?? "";
      expect(cidr).toMatch(/^10\.124\.40\.\d+\/24$/);
      const ip = cidr.split("/")[0] ?? "";
      console.log(
        `pod VM up in ${launchMs.toFixed(0)} ms (${pod.vm.accel}; VM boot ${pod.vm.timings.totalMs.toFixed(0)} ms, ` +
          `guest ConfigureNetwork ${(pod.guestNetwork.durationSeconds * 1000).toFixed(0)} ms), ${nic.mac} ${cidr}`,
      );

      // The guest kernel's view, as vminitd read it back after applying the config.
      const eth0 = pod.guestNetwork.status?.interfaces.find((i) => i.name === "eth0");
      expect(eth0).toMatchObject({ mac: nic.mac, mtu: nic.mtu, up: true, carrier: true });
      expect(eth0?.addresses).toContain(cidr);
      expect(pod.guestNetwork.status?.routes).toContainEqual(
        expect.objectContaining({ dst: "0.0.0.0/0", gateway: net.gateway, interface: "eth0" }),
      );
      expect(pod.guestNetwork.resolvConfPath).toBe("/run/beetroot/resolv.conf");
      expect(pod.guestNetwork.resolvConf).toContain(
        "nameserver 10.124.0.53\nsearch pod.test\noptions ndots:2\n",
      );
      const status = await pod.vm.guest.service(System).networkStatus({}, { timeoutMs: 10_000 });
      expect(status.interfaces.find((i) => i.name === "eth0")?.addresses).toContain(cidr);
      // A second, identical request (a retry after a lost reply) is answered, not re-applied.
      await expect(pod.network.configureGuest(pod.vm.guest)).resolves.toBeDefined();

      // Host side: the TAP sits in the pod namespace; QEMU holds it, this process does not.
      const links = withRtnl(await native(), att.netns, (r) => r.links());
      expect(links.find((l) => l.name === nic.tap)?.kind).toBe("tun");
      expect(ownTunFds()).toBe(tunFdsBefore);

      // TCP from the host to the guest's kernel, then into a container the guest runs.
      expect(await connectError(ip, 5999)).toBe("ECONNREFUSED");
      const servers = await startGuestServers(pod.vm, ip);
      try {
        const t = await measureThroughput(ip, SINK_PORT, 4 * 1048576);
        const rtt = await measureRoundTrips(ip, ECHO_PORT, 50);
        console.log(
          `host → container in the VM: ${t.mibPerSecond.toFixed(1)} MiB/s (4 MiB), RTT median ${rtt.medianUs.toFixed(0)} µs, p99 ${rtt.p99Us.toFixed(0)} µs`,
        );
        expect(t.bytes).toBe(4 * 1048576);
      } finally {
        await servers.stop();
      }

      const t1 = performance.now();
      const exit = await pod.stop();
      stopped = true;
      console.log(`stop (VM, TAP, CNI DEL, netns): ${(performance.now() - t1).toFixed(0)} ms`);
      expect(exit).toEqual({ state: "stopped" });
    } finally {
      if (!stopped) await pod.stop();
    }
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
    expect(await leakSnapshot(net, [id])).toEqual({
      netns: 0,
      leases: 0,
      iptablesRules: 0,
      nftRules: 0,
      hostVethsOnBridge: 0,
    });
  });

  it("attaches to a namespace CNI already configured (CRI), takes DNS from the spec's resolv.conf, and leaves the namespace as it was", async () => {
    const n = await native();
    const id = `vn-attach-${process.pid}`;
    const ns = `/run/netns/btest-vnattach-${process.pid}`;
    const cni = new CniRuntime();
    const rt = { containerId: id, netns: ns, ifname: "eth0" };
    createNetns(n, ns);
    try {
      const added = await cni.add(net.conf.list, rt);
      try {
        const cidr = added.ips[0]?.address ?? "";
        const resolv = join(dir, "cri-resolv.conf");
        writeFileSync(resolv, "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n");
        const pod = await launchPodVm({
          vmm: env.host.vmm,
          spec: env.host.spec(id),
          ociSpec: {
            linux: { namespaces: [{ type: "network", path: ns }] },
            mounts: [
              { destination: "/etc/resolv.conf", type: "bind", source: resolv, options: ["rbind", "ro"] },
            ],
          },
          containerId: id,
          paths: env.paths,
          log,
        });
        try {
          expect(pod.network.attachment.mode).toBe("attach");
          const eth0 = pod.guestNetwork.status?.interfaces.find((i) => i.name === "eth0");
          expect(eth0?.addresses).toContain(cidr);
          expect(pod.guestNetwork.resolvConf).toContain(
            "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n",
          );
          expect(await connectError(cidr.split("/")[0] ?? "", 5999)).toBe("ECONNREFUSED");
        } finally {
          expect(await pod.stop()).toEqual({ state: "stopped" });
        }
        // CRI's namespace outlives the VM as CRI made it: eth0 with its address, no TAP, no tc.
        const after = withRtnl(n, ns, (r) => {
          const links = r.links();
          const e = links.find((l) => l.name === "eth0");
          return {
            eth0: e !== undefined,
            ingress: e ? r.hasIngressQdisc(e) : undefined,
            taps: links.filter((l) => l.kind === "tun").length,
            addresses: r.addresses().filter((a) => a.index === e?.index && a.family === 4).length,
          };
        });
        expect(after).toEqual({ eth0: true, ingress: false, taps: 0, addresses: 1 });
        expect(leftovers(env)).toEqual(NOTHING_LEFT);
      } finally {
        await cni.del(net.conf.list, rt);
      }
    } finally {
      removeNetns(n, ns);
    }
    expect(await leakSnapshot(net, [id])).toEqual({
      netns: 0,
      leases: 0,
      iptablesRules: 0,
      nftRules: 0,
      hostVethsOnBridge: 0,
    });
  });

  it("refuses host networking before anything is made", async () => {
    await expect(
      launchPodVm({
        vmm: env.host.vmm,
        spec: env.host.spec(`vn-host-${process.pid}`),
        ociSpec: { linux: { namespaces: [{ type: "pid" }] } },
        containerId: "host-net",
        paths: env.paths,
        log,
        network: { confList: net.conf },
      }),
    ).rejects.toMatchObject({ code: "InvalidArgument", message: expect.stringMatching(/host's network/) });
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
  });

  it("undoes the pod network when the VM cannot boot", async () => {
    const id = `vn-bad-${process.pid}`;
    await expect(
      launchPodVm({
        vmm: env.host.vmm,
        spec: env.host.spec(id, { kernel: join(dir, "no-such-vmlinux") }),
        ociSpec: managedSpec,
        containerId: id,
        paths: env.paths,
        log,
        network: { confList: net.conf },
      }),
    ).rejects.toThrow(/no-such-vmlinux/);
    expect(leftovers(env)).toEqual(NOTHING_LEFT);
    expect(await leakSnapshot(net, [id])).toEqual({
      netns: 0,
      leases: 0,
      iptablesRules: 0,
      nftRules: 0,
      hostVethsOnBridge: 0,
    });
  });
});
