import { rmSync } from "node:fs";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { hostTscKhz, kernelArtifact } from "../internal/kernel/index.ts";
import { bootBusyboxVm, ECHO_PORT, SINK_PORT } from "../internal/network/bench/busybox-vm.ts";
import { measureRoundTrips, measureThroughput } from "../internal/network/bench/measure.ts";
import type { NativeNet } from "../internal/network/native/addon.ts";
import { createNetwork } from "../internal/network/network.ts";
import { openLedger } from "../internal/state/ledger.ts";
import { type Missing, setupMissing, skipReason } from "./fixtures/skip.ts";
import {
  gcTestLedgers,
  leakSnapshot,
  missingNetworkCapability,
  native,
  scratchDir,
  type TestNetwork,
  testNetwork,
} from "./network-support.ts";

/**
 * A real micro-VM on the pod network: beetroot's guest kernel under TCG, QEMU's virtio-net-device
 * on the TAP descriptor, the guest configured from the guest network config (busybox `ip`
 * standing in for vminitd). The guest must see the pod MAC and MTU, reach its gateway, and serve
 * TCP that the host reaches at the container's CNI address.
 */
function missingKernel(): Missing | undefined {
  try {
    kernelArtifact();
    loadHostDeps();
  } catch (err) {
    return setupMissing((err as Error).message);
  }
  return undefined;
}
const reason = skipReason(import.meta.url, missingNetworkCapability(), missingKernel());

describe.skipIf(reason)("a TCG micro-VM on the pod network", () => {
  let n: NativeNet;
  let net: TestNetwork;
  let libDir: string;
  beforeAll(async () => {
    n = await native();
    net = testNetwork("v", 30);
    libDir = scratchDir("vm-ledger");
  });
  afterAll(async () => {
    await gcTestLedgers(libDir);
    rmSync(libDir, { recursive: true, force: true });
    rmSync(net.confDir, { recursive: true, force: true });
  });

  it("gets the pod MAC, MTU and address, pings the gateway, and serves TCP to the host", async () => {
    const deps = loadHostDeps();
    const ledger = await openLedger("net-vm", { libDir });
    const network = createNetwork({ ledger, native: n, confList: net.conf });
    const id = `nettest-vm-${process.pid}`;
    const att = await network.setup(id, { kind: "managed" });
    try {
      const nic = att.nics[0];
      if (!nic) throw new Error("no NIC");
      const tsc = await hostTscKhz().catch(() => undefined);
      const vm = await bootBusyboxVm({
        qemu: deps.qemu,
        busybox: deps.busyboxStatic,
        vmlinux: kernelArtifact().vmlinux,
        tscKhz: tsc?.khz,
        nic,
        config: att.guestConfig,
      });
      // QEMU holds its own copy now; the TAP lives exactly as long as QEMU.
      network.closeTapFds();
      try {
        console.log(`VM on the pod network ready in ${vm.bootSeconds.toFixed(2)} s (TCG)`);
        const addr = att.guestConfig.interfaces[0]?.addresses[0] ?? "";
        expect(vm.tagged("NIC"), vm.console()).toEqual([`${nic.mac} ${nic.mtu}`]);
        expect(vm.tagged("ADDR")).toEqual([addr]);
        expect(vm.tagged("PING")[0], vm.console()).toMatch(/3 packets transmitted, 3 packets received/);
        expect(vm.tagged("RESOLV")).toContain("nameserver 10.124.0.53");
        const ip = addr.split("/")[0] ?? "";
        const t = await measureThroughput(ip, SINK_PORT, 8 * 1048576);
        const rtt = await measureRoundTrips(ip, ECHO_PORT, 100);
        console.log(
          `host → VM: ${t.mibPerSecond.toFixed(1)} MiB/s (8 MiB), RTT median ${rtt.medianUs.toFixed(0)} µs p99 ${rtt.p99Us.toFixed(0)} µs`,
        );
        // A connection to a port nothing listens on is refused by the guest kernel, not timed out.
        await expect(
          new Promise((resolve, reject) => {
            const s = connect({ host: ip, port: 5999 });
            s.on("connect", () => resolve("connected"));
            s.on("error", reject);
          }),
        ).rejects.toMatchObject({ code: "ECONNREFUSED" });
      } finally {
        await vm.stop();
      }
    } finally {
      await network.teardown();
    }
    expect(await ledger.list()).toEqual([]);
    await ledger.close();
    expect(await leakSnapshot(net, [id])).toEqual({
      netns: 0,
      leases: 0,
      iptablesRules: 0,
      nftRules: 0,
      hostVethsOnBridge: 0,
    });
  });
});
