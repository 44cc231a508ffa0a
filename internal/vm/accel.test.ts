import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccelError, type AccelInputs, decideAccel } from "./accel.ts";
import type { KvmProbeResult } from "./kvm-probe.ts";

let cacheDir: string;
beforeEach(() => {
  cacheDir = mkdtempSync(join(tmpdir(), "beetroot-accel-"));
});
afterEach(() => rmSync(cacheDir, { recursive: true, force: true }));

function inputs(
  configured: AccelInputs["configured"],
  result: KvmProbeResult,
  calls: { n: number },
): AccelInputs {
  return {
    configured,
    cacheDir,
    guestKernelId: "k1",
    hostKernel: "6.1.0-test",
    qemuVersion: "7.2.22",
    probeInputs: { qemu: "/nonexistent/qemu", kernel: "/k", busybox: "/b", timeoutMs: 1000 },
    probe: async () => {
      calls.n++;
      return result;
    },
  };
}

const broken: KvmProbeResult = {
  ok: false,
  reason: "KVM internal error (suberror 1: emulation failure)",
  elapsedMs: 300,
};
const working: KvmProbeResult = {
  ok: true,
  reason: "a probe boot under KVM reached userspace in 180 ms",
  elapsedMs: 180,
};

describe("accelerator policy", () => {
  it("tcg: no probe, announced with the reason and the cost", async () => {
    const calls = { n: 0 };
    const d = await decideAccel(inputs("tcg", working, calls));
    expect(d).toMatchObject({ accel: "tcg", reason: "accel = tcg is configured" });
    expect(d.announcement).toMatch(/^using TCG software emulation \(accel = tcg is configured\); .*slower/);
    expect(calls.n).toBe(0);
  });

  it("auto: KVM only when the probe boot passed, silently", async () => {
    const d = await decideAccel(inputs("auto", working, { n: 0 }));
    expect(d.accel).toBe("kvm");
    expect(d.announcement).toBeUndefined();
  });

  it("auto: TCG with the probe's reason when KVM is broken", async () => {
    const d = await decideAccel(inputs("auto", broken, { n: 0 }));
    expect(d.accel).toBe("tcg");
    expect(d.reason).toBe("KVM probe failed: KVM internal error (suberror 1: emulation failure)");
    expect(d.announcement).toContain("KVM probe failed: KVM internal error");
  });

  it("kvm: a precise error when the probe failed", async () => {
    await expect(decideAccel(inputs("kvm", broken, { n: 0 }))).rejects.toThrow(AccelError);
    await expect(decideAccel(inputs("kvm", broken, { n: 0 }))).rejects.toThrow(
      /^accel = kvm is configured but KVM does not work on this host: KVM internal error \(suberror 1: emulation failure\)/,
    );
  });

  it("caches the probe per host kernel, QEMU version and guest kernel", async () => {
    const calls = { n: 0 };
    const first = await decideAccel(inputs("auto", broken, calls));
    expect(first.probe?.cached).toBe(false);
    const second = await decideAccel(inputs("auto", working, calls));
    expect(second.probe?.cached).toBe(true);
    expect(second.accel).toBe("tcg");
    expect(calls.n).toBe(1);
    expect(JSON.parse(readFileSync(join(cacheDir, "kvm-probe.json"), "utf8")).key).toEqual({
      hostKernel: "6.1.0-test",
      qemuVersion: "7.2.22",
      guestKernel: "k1",
    });
    // Another QEMU, another guest kernel, or --reprobe: probe again.
    expect((await decideAccel({ ...inputs("auto", working, calls), qemuVersion: "8.0" })).accel).toBe("kvm");
    expect((await decideAccel({ ...inputs("auto", broken, calls), guestKernelId: "k2" })).accel).toBe("tcg");
    expect(
      (await decideAccel({ ...inputs("auto", working, calls), guestKernelId: "k2", reprobe: true })).accel,
    ).toBe("kvm");
    expect(calls.n).toBe(4);
  });
});
