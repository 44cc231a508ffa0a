import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MetricsSchema } from "../../../api/gen/cgroups/v2/metrics_pb.ts";
import { encodeMetrics, parseIoStat, readMetrics } from "./metrics.ts";

const files: Record<string, string> = {
  "/cg/pids.current": "3\n",
  "/cg/pids.max": "max\n",
  "/cg/cpu.stat":
    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
  "/cg/memory.current": "4096000\n",
  "/cg/memory.max": "67108864\n",
  "/cg/memory.peak": "5000000\n",
  "/cg/memory.stat": "anon 1000\nfile 2000\nkernel_stack 16384\npgfault 77\nthp_collapse_alloc 1\n",
  "/cg/memory.events": "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
  "/cg/io.stat": "254:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
};

describe("readMetrics", () => {
  it("reads cgroup v2 files into containerd's Metrics and survives the round trip", () => {
    const m = readMetrics("/cg", (p) => files[p]);
    const back = fromBinary(MetricsSchema, encodeMetrics(m));
    expect(back.pids).toMatchObject({ current: 3n, limit: 0xffffffffffffffffn });
    expect(back.cpu).toMatchObject({ usageUsec: 1500n, userUsec: 1000n, systemUsec: 500n });
    expect(back.memory).toMatchObject({
      anon: 1000n,
      file: 2000n,
      kernelStack: 16384n,
      pgfault: 77n,
      thpCollapseAlloc: 1n,
      usage: 4096000n,
      usageLimit: 67108864n,
      maxUsage: 5000000n,
      swapUsage: 0n,
    });
    expect(back.memoryEvents).toMatchObject({ max: 4n, oom: 1n, oomKill: 1n });
    expect(back.io?.usage).toEqual([
      expect.objectContaining({ major: 254n, minor: 16n, rbytes: 4096n, rios: 1n }),
    ]);
  });

  it("leaves sections of missing controllers unset", () => {
    const m = readMetrics("/cg", (p) => (p.endsWith("cpu.stat") ? files[p] : undefined));
    expect(m.cpu?.usageUsec).toBe(1500n);
    expect(m.memory).toBeUndefined();
    expect(m.pids).toBeUndefined();
  });

  it("skips malformed io.stat lines", () => {
    expect(parseIoStat("garbage\n\n8:0 rbytes=1")).toHaveLength(1);
  });
});
