import { describe, expect, it } from "vitest";
import { breakdown, percentile } from "./bench-boot.ts";

describe("boot bench arithmetic", () => {
  it("nearest-rank percentiles", () => {
    const v = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 90)).toBe(9);
    expect(percentile(v, 100)).toBe(10);
    expect(percentile([42], 90)).toBe(42);
    expect(percentile([], 50)).toBeNaN();
  });

  it("splits a boot into phases that add up to the total", () => {
    const b = breakdown({
      launcherMs: 20,
      vsockDaemonMs: 5,
      qmpReadyMs: 80,
      guestConnectedMs: 900,
      totalMs: 950,
      guestInitExecS: 0.3,
      guestVminitdStartS: 0.4,
      guestReadyS: 0.6,
      guestUptimeAtInfoS: 0.75,
    });
    expect(b["spawn → guest clock starts (QEMU, early kernel)"]).toBeCloseTo(200);
    expect(b["kernel → /sbin/init execs Bun"]).toBeCloseTo(300);
    expect(b["Bun start → vminitd runs"]).toBeCloseTo(100);
    expect(b["vminitd setup → dialling"]).toBeCloseTo(200);
    expect(b["dialling → first RPC answered"]).toBeCloseTo(150);
    expect(b["host: accepted → first RPC answered"]).toBeCloseTo(50);
    const parts = [
      "spawn → guest clock starts (QEMU, early kernel)",
      "kernel → /sbin/init execs Bun",
      "Bun start → vminitd runs",
      "vminitd setup → dialling",
      "dialling → first RPC answered",
    ].reduce((sum, k) => sum + b[k]!, 0);
    expect(parts).toBeCloseTo(950);
  });
});
