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
      vsockDaemonMs: 5,
      qmpReadyMs: 80,
      guestConnectedMs: 900,
      totalMs: 950,
      guestVminitdStartS: 0.4,
      guestReadyS: 0.6,
      guestUptimeAtInfoS: 0.75,
    });
    expect(b["qemu start (spawn → kernel entry)"]).toBeCloseTo(200);
    expect(b["kernel (entry → vminitd start)"]).toBeCloseTo(400);
    expect(b["vminitd start → dialling"]).toBeCloseTo(200);
    expect(b["dialling → connected (host)"]).toBeCloseTo(100);
    expect(b["connected → first RPC answered"]).toBeCloseTo(50);
    const parts = [
      "qemu start (spawn → kernel entry)",
      "kernel (entry → vminitd start)",
      "vminitd start → dialling",
      "dialling → connected (host)",
      "connected → first RPC answered",
    ].reduce((sum, k) => sum + b[k]!, 0);
    expect(parts).toBeCloseTo(950);
  });
});
