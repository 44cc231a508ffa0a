import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { beetrootPaths } from "../config/paths.ts";
import { createLogger } from "../log/logger.ts";
import { resolveVmHost } from "./host.ts";
import type { BootTimings } from "./vm.ts";

/**
 * `beetroot bench boot [--json] [--boots N] [--warmup N] [--memory MiB] [--cpus N] [--idle-ms N]`:
 * boots N VMs one after the other and reports the time from QEMU spawn to vminitd's first TTRPC
 * answer (median, p90, breakdown), then the idle host RSS of QEMU + vhost-device-vsock. Warm-up
 * boots (default 1: the host page cache may not hold the image, kernel and QEMU yet) are reported
 * but not counted.
 */

interface BootSample extends BootTimings {
  readonly index: number;
  /**
   * CPU time all of QEMU's threads used from spawn to the first answer. Unlike wall time it hardly
   * moves with the host's load (only cache and TLB effects do), so variants can be compared on a
   * busy host: it is the boot's cost, not its latency.
   */
  readonly qemuCpuMs: number;
}

export interface RssSample {
  /** VmRSS of QEMU (guest RAM the guest touched counts: it is a shared memfd mapping). */
  readonly qemuKiB: number;
  readonly qemuShmemKiB: number;
  readonly vhostDeviceVsockKiB: number;
  readonly totalKiB: number;
}

export interface BootBenchResult {
  readonly accel: string;
  readonly accelReason: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly boots: readonly BootSample[];
  readonly warmupMs: readonly number[];
  readonly summary: Record<string, { median: number; p90: number; min: number; max: number }>;
  readonly idleRss: RssSample;
  readonly idleAfterMs: number;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest-rank: the smallest value with at least p% of samples at or below it.
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]!;
}

function statusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]);
}

/** Time on CPU of every thread of `pid` so far (schedstat: nanoseconds), in ms. */
export function processCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile; its time is gone with it (QEMU's threads live as long as it)
    }
  }
  return ns / 1e6;
}

export function readRss(qemuPid: number, vsockdPid: number): RssSample {
  const qemuKiB = statusKiB(qemuPid, "VmRSS");
  const vhostDeviceVsockKiB = statusKiB(vsockdPid, "VmRSS");
  return {
    qemuKiB,
    qemuShmemKiB: statusKiB(qemuPid, "RssShmem"),
    vhostDeviceVsockKiB,
    totalKiB: qemuKiB + vhostDeviceVsockKiB,
  };
}

/**
 * The phases of one boot in ms. The first five add up to `total`: the host clock gives the total,
 * the guest's CLOCK_BOOTTIME the steps inside (its zero lies after QEMU's start and the kernel's
 * earliest code, hence the first phase is measured as the difference).
 */
export function breakdown(t: BootTimings): Record<string, number> {
  const s = 1000;
  return {
    total: t.totalMs,
    "spawn → guest clock starts (QEMU, early kernel)": t.totalMs - t.guestUptimeAtInfoS * s,
    "kernel → /sbin/init execs Bun": t.guestInitExecS * s,
    "Bun start → vminitd runs": (t.guestVminitdStartS - t.guestInitExecS) * s,
    "vminitd setup → dialling": (t.guestReadyS - t.guestVminitdStartS) * s,
    "dialling → first RPC answered": (t.guestUptimeAtInfoS - t.guestReadyS) * s,
    "host: accepted → first RPC answered": t.totalMs - t.guestConnectedMs,
    "host: spawn → QMP ready": t.qmpReadyMs,
    "host: launch() → QEMU spawn (not in total)": t.launcherMs,
    "host: of which vhost-device-vsock ready": t.vsockDaemonMs,
  };
}

export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: "boolean", default: false },
      boots: { type: "string", default: "10" },
      warmup: { type: "string", default: "1" },
      memory: { type: "string", default: "512" },
      cpus: { type: "string" },
      "idle-ms": { type: "string", default: "3000" },
      verbose: { type: "boolean", short: "v", default: false },
    },
  });
  const boots = Number(values.boots);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be ≥ 0, got ${values.warmup}`);
  const memoryMiB = Number(values.memory);
  const idleMs = Number(values["idle-ms"]);
  if (!Number.isInteger(boots) || boots < 1)
    throw new Error(`--boots must be a positive integer, got ${values.boots}`);
  if (!Number.isInteger(memoryMiB) || memoryMiB < 128)
    throw new Error(`--memory must be ≥ 128 (MiB), got ${values.memory}`);

  // A private run/lib dir: the bench must not collide with (or be collected as) a real shim's VMs.
  const scratch = mkdtempSync(join(tmpdir(), "bb-"));
  const paths = { ...beetrootPaths(), runDir: join(scratch, "run"), libDir: join(scratch, "lib") };
  const log = createLogger({ fd: values.verbose ? 2 : null, level: "debug" });
  const say = (line: string) => {
    if (!values.json) process.stdout.write(`${line}\n`);
  };
  try {
    const host = await resolveVmHost(paths, log);
    const cpus = values.cpus === undefined ? host.config.vm.cpus : Number(values.cpus);
    say(`accelerator: ${host.accel.accel.toUpperCase()} (${host.accel.reason})`);
    if (host.accel.announcement) say(`note: ${host.accel.announcement}`);
    say(
      `booting ${boots} VMs one after another: ${cpus} vCPU, ${memoryMiB} MiB, kernel ${host.kernel.version}`,
    );

    const warmupMs: number[] = [];
    for (let i = 0; i < warmup; i++) {
      const vm = await host.vmm.launch(host.spec(`bench-${process.pid}-w${i}`, { cpus, memoryMiB }));
      warmupMs.push(vm.timings.totalMs);
      say(`  warm-up ${i + 1}: ${vm.timings.totalMs.toFixed(0)} ms (not counted)`);
      const exit = await vm.stop();
      if (exit.state !== "stopped") throw exit.error ?? new Error(`VM ${vm.id} ended ${exit.state}`);
    }
    const samples: BootSample[] = [];
    let idleRss: RssSample | undefined;
    for (let i = 0; i < boots; i++) {
      const vm = await host.vmm.launch(host.spec(`bench-${process.pid}-${i}`, { cpus, memoryMiB }));
      samples.push({ index: i, ...vm.timings, qemuCpuMs: processCpuMs(vm.pids.qemu) });
      say(`  boot ${String(i + 1).padStart(2)}: ${vm.timings.totalMs.toFixed(0)} ms`);
      if (i === boots - 1) {
        // Idle: vminitd up, nothing running; give the guest time to settle first.
        await sleep(idleMs);
        idleRss = readRss(vm.pids.qemu, vm.pids.vhostDeviceVsock);
      }
      const exit = await vm.stop();
      if (exit.state !== "stopped") throw exit.error ?? new Error(`VM ${vm.id} ended ${exit.state}`);
    }

    const phases = samples.map(
      (s): Record<string, number> => ({
        ...breakdown(s),
        "host: QEMU CPU time until the answer (not in total)": s.qemuCpuMs,
      }),
    );
    const summary: BootBenchResult["summary"] = {};
    for (const key of Object.keys(phases[0]!)) {
      const v = phases.map((p) => p[key]!);
      summary[key] = {
        median: percentile(v, 50),
        p90: percentile(v, 90),
        min: Math.min(...v),
        max: Math.max(...v),
      };
    }
    const result: BootBenchResult = {
      accel: host.accel.accel,
      accelReason: host.accel.reason,
      cpus,
      memoryMiB,
      boots: samples,
      warmupMs,
      summary,
      idleRss: idleRss!,
      idleAfterMs: idleMs,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const width = Math.max(...Object.keys(summary).map((k) => k.length));
      say(`\n${"phase (ms)".padEnd(width)}  median     p90     min     max`);
      for (const [k, s] of Object.entries(summary)) {
        say(
          `${k.padEnd(width)}  ${[s.median, s.p90, s.min, s.max].map((n) => n.toFixed(0).padStart(6)).join("  ")}`,
        );
      }
      const r = result.idleRss;
      say(
        `\nidle RSS after ${idleMs} ms (${memoryMiB} MiB guest): QEMU ${(r.qemuKiB / 1024).toFixed(1)} MiB ` +
          `(of which guest RAM/shmem ${(r.qemuShmemKiB / 1024).toFixed(1)} MiB) + vhost-device-vsock ` +
          `${(r.vhostDeviceVsockKiB / 1024).toFixed(1)} MiB = ${(r.totalKiB / 1024).toFixed(1)} MiB`,
      );
    }
    return 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
