/**
 * cgroup v2 statistics of a container as io.containerd.cgroups.v2.Metrics (what `ctr task metrics`
 * and kubelet decode), read the way containerd/cgroups' cgroup2 manager reads them. Missing files
 * (a controller not enabled) leave their section unset; a "max" limit reads as the largest uint64,
 * as containerd reports it.
 *
 * Only Stats needs this module and its descriptors (cgroups/v2/metrics.proto), but it is imported
 * statically: a dynamic import() cost more at boot than the descriptors, which the build decodes
 * ahead (scripts/predecoded-descriptors.mjs) and cost ~6 ms of a user-mode TCG run (docs/boot-time.md).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  CPUStatSchema,
  IOStatSchema,
  MemoryEventsSchema,
  MemoryStatSchema,
  type Metrics,
  MetricsSchema,
  PidsStatSchema,
} from "../../../api/gen/cgroups/v2/metrics_pb.ts";
import { flatKeyed, u64 } from "./cgroup-text.ts";

export type ReadFile = (path: string) => string | undefined;

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** io.stat: "MAJ:MIN rbytes=… wbytes=… rios=… wios=… …" per device. */
export function parseIoStat(text: string | undefined) {
  const out: { major: bigint; minor: bigint; rbytes: bigint; wbytes: bigint; rios: bigint; wios: bigint }[] =
    [];
  for (const line of (text ?? "").split("\n")) {
    const [dev, ...kv] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? "");
    if (!m) continue;
    const f = new Map(kv.map((p) => p.split("=") as [string, string]));
    out.push({
      major: BigInt(m[1] ?? 0),
      minor: BigInt(m[2] ?? 0),
      rbytes: u64(f.get("rbytes")),
      wbytes: u64(f.get("wbytes")),
      rios: u64(f.get("rios")),
      wios: u64(f.get("wios")),
    });
  }
  return out;
}

const MEMORY_STAT_KEYS = [
  "anon",
  "file",
  "kernel_stack",
  "slab",
  "sock",
  "shmem",
  "file_mapped",
  "file_dirty",
  "file_writeback",
  "anon_thp",
  "inactive_anon",
  "active_anon",
  "inactive_file",
  "active_file",
  "unevictable",
  "slab_reclaimable",
  "slab_unreclaimable",
  "pgfault",
  "pgmajfault",
  "workingset_refault",
  "workingset_activate",
  "workingset_nodereclaim",
  "pgrefill",
  "pgscan",
  "pgsteal",
  "pgactivate",
  "pgdeactivate",
  "pglazyfree",
  "pglazyfreed",
  "thp_fault_alloc",
  "thp_collapse_alloc",
] as const;

export function readMetrics(cgroupDir: string, read: ReadFile): Metrics {
  const f = (name: string) => read(`${cgroupDir}/${name}`);
  const metrics = create(MetricsSchema, {});
  const pidsCurrent = f("pids.current");
  if (pidsCurrent !== undefined) {
    metrics.pids = create(PidsStatSchema, { current: u64(pidsCurrent), limit: u64(f("pids.max")) });
  }
  const cpu = f("cpu.stat");
  if (cpu !== undefined) {
    const s = flatKeyed(cpu);
    metrics.cpu = create(CPUStatSchema, {
      usageUsec: s.get("usage_usec") ?? 0n,
      userUsec: s.get("user_usec") ?? 0n,
      systemUsec: s.get("system_usec") ?? 0n,
      nrPeriods: s.get("nr_periods") ?? 0n,
      nrThrottled: s.get("nr_throttled") ?? 0n,
      throttledUsec: s.get("throttled_usec") ?? 0n,
    });
  }
  const memStat = f("memory.stat");
  if (memStat !== undefined) {
    const s = flatKeyed(memStat);
    const fields: Record<string, bigint> = {};
    for (const k of MEMORY_STAT_KEYS) fields[camel(k)] = s.get(k) ?? 0n;
    metrics.memory = create(MemoryStatSchema, {
      ...fields,
      usage: u64(f("memory.current")),
      usageLimit: u64(f("memory.max")),
      swapUsage: u64(f("memory.swap.current")),
      swapLimit: u64(f("memory.swap.max")),
      maxUsage: u64(f("memory.peak")),
      swapMaxUsage: u64(f("memory.swap.peak")),
    });
  }
  const events = f("memory.events");
  if (events !== undefined) {
    const e = flatKeyed(events);
    metrics.memoryEvents = create(MemoryEventsSchema, {
      low: e.get("low") ?? 0n,
      high: e.get("high") ?? 0n,
      max: e.get("max") ?? 0n,
      oom: e.get("oom") ?? 0n,
      oomKill: e.get("oom_kill") ?? 0n,
    });
  }
  const io = f("io.stat");
  if (io !== undefined) metrics.io = create(IOStatSchema, { usage: parseIoStat(io) });
  return metrics;
}

export function encodeMetrics(m: Metrics): Uint8Array {
  return toBinary(MetricsSchema, m);
}
