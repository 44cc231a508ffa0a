/**
 * `beetroot bench net` with its VM row on the real thing: the beetroot guest image booted by the
 * launcher on a managed pod network (launchPodVm), the NIC configured by vminitd
 * (System.ConfigureNetwork), and the sink/echo servers in a crun container in the VM — the path an
 * application container's traffic takes. The rest of the suite (setup/teardown, veth, TAP+QEMU
 * stand-in) is internal/network/bench; this file only supplies the VM row, because internal/network
 * may not import the launcher.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beetrootPaths } from "../config/paths.ts";
import { createLogger } from "../log/logger.ts";
import type { PathResult, VmRowBench } from "../network/bench/command.ts";
import { main as netBenchMain } from "../network/bench/command.ts";
import { measureRoundTrips, measureThroughput } from "../network/bench/measure.ts";
import { busyboxServersDisk, ECHO_PORT, SINK_PORT, startGuestServers } from "./guest-servers.ts";
import { resolveVmHost, type VmHost } from "./host.ts";
import { launchPodVm } from "./pod-network.ts";

const podVmRow: VmRowBench = async (conf, o): Promise<PathResult | undefined> => {
  const paths = beetrootPaths();
  const log = createLogger({ fd: process.env.BEETROOT_BENCH_LOG ? 2 : null, level: "info" });
  let host: VmHost;
  try {
    host = await resolveVmHost(paths, log);
  } catch (err) {
    process.stderr.write(
      `  vm row: the beetroot guest cannot boot here (${(err as Error).message.split("\n")[0]}); using the busybox stand-in\n`,
    );
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "beetroot-bench-net-"));
  try {
    const disk = await busyboxServersDisk(dir, {
      busybox: host.deps.busyboxStatic,
      mkfsErofs: host.deps.mkfsErofs,
    });
    const id = `bench-net-${process.pid}`;
    const t0 = performance.now();
    const pod = await launchPodVm({
      vmm: host.vmm,
      spec: host.spec(id, { disks: [disk] }),
      ociSpec: { linux: { namespaces: [{ type: "network" }] } },
      containerId: id,
      paths,
      log,
      network: { confList: conf },
    });
    const upMs = performance.now() - t0;
    try {
      const ip = (pod.network.attachment.cniResult?.ips[0]?.address ?? "").split("/")[0] ?? "";
      const servers = await startGuestServers(pod.vm, ip);
      try {
        const spec = host.spec(id);
        return {
          path: "vm",
          throughput: await measureThroughput(ip, SINK_PORT, o.vmMib * 1048576),
          rtt: await measureRoundTrips(ip, ECHO_PORT, Math.min(o.rtt, 200)),
          note:
            `beetroot guest image, ${pod.vm.accel.toUpperCase()}, ${spec.cpus} vCPU, ${spec.memoryMiB} MiB; ` +
            `busybox nc in a crun container; network + boot + ConfigureNetwork in ${(upMs / 1000).toFixed(2)} s`,
        };
      } finally {
        await servers.stop();
      }
    } finally {
      await pod.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export function main(args: string[]): Promise<number> {
  return netBenchMain(args, podVmRow);
}
