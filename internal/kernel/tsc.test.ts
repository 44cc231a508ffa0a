import { describe, expect, it } from "vitest";
import { hostTscKhz, mhzToKhz, tscFromCpuinfo, tscFromKernelLog } from "./tsc.ts";

describe("host TSC rate", () => {
  it("converts MHz text exactly", () => {
    expect(mhzToKhz("2596.122")).toBe(2596122);
    expect(mhzToKhz("2596.1")).toBe(2596100);
    expect(mhzToKhz("3000")).toBe(3000000);
    expect(mhzToKhz("2596.1229")).toBe(2596122);
    expect(() => mhzToKhz("fast")).toThrow(/not a MHz figure/);
  });
  it("prefers the refined calibration over the early detection", () => {
    const log =
      "[0.000064] tsc: Detected 2596.122 MHz processor\n[1.5] tsc: Refined TSC clocksource calibration: 2595.998 MHz\n";
    expect(tscFromKernelLog(log)).toBe(2595998);
    expect(tscFromKernelLog("[0.000064] tsc: Detected 2596.122 MHz processor\n")).toBe(2596122);
    expect(tscFromKernelLog("nothing here")).toBeUndefined();
  });
  it("trusts cpuinfo only with an invariant TSC", () => {
    const info = (flags: string) => `processor\t: 0\ncpu MHz\t\t: 2596.122\nflags\t\t: fpu tsc ${flags}\n`;
    expect(tscFromCpuinfo(info("constant_tsc nonstop_tsc"))).toBe(2596122);
    expect(tscFromCpuinfo(info("constant_tsc"))).toBeUndefined();
  });
  it("honours and validates the override", async () => {
    await expect(hostTscKhz({ BEETROOT_TSC_KHZ: "2596000" })).resolves.toEqual({
      khz: 2596000,
      source: "BEETROOT_TSC_KHZ",
    });
    await expect(hostTscKhz({ BEETROOT_TSC_KHZ: "2.5GHz" })).rejects.toThrow(/must be the TSC rate in kHz/);
  });
});
