import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { setupMissing, skipReason } from "../../test/fixtures/skip.ts";
import { buildCpio } from "./cpio.ts";
import { probeBoot, probeKvm, summarizeKvmFailure } from "./kvm-probe.ts";

describe("cpio newc writer", () => {
  it("writes an archive that cpio(1) lists with modes and device numbers", () => {
    const archive = buildCpio([
      { type: "dir", path: "/bin", mode: 0o755 },
      { type: "char", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
      { type: "file", path: "init", mode: 0o755, data: Buffer.from("#!/bin/sh\n") },
    ]);
    expect(archive.length % 4).toBe(0);
    const listing = execFileSync("cpio", ["-itv", "--quiet"], { input: archive }).toString();
    expect(listing).toMatch(/^drwxr-xr-x .* bin$/m);
    expect(listing).toMatch(/^crw------- .* 5,\s+1 .* dev\/console$/m);
    expect(listing).toMatch(/^-rwxr-xr-x .* 10 .* init$/m);
    expect(() => buildCpio([{ type: "dir", path: "../x", mode: 0o755 }])).toThrow(/bad cpio path/);
  });
});

describe("KVM failure summary", () => {
  it("names the KVM internal error and its suberror", () => {
    const stderr = "KVM internal error. Suberror: 1\nextra data[0]: 0x0000000000000001\nRAX=...";
    expect(summarizeKvmFailure(stderr, "internal-error")).toBe(
      "KVM internal error (suberror 1: emulation failure)",
    );
    expect(
      summarizeKvmFailure(
        "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu: Assertion failed",
        undefined,
      ),
    ).toBe("error: failed to set MSR 0x10a to 0x69");
    expect(summarizeKvmFailure("", "guest-panicked")).toBe('guest stopped in state "guest-panicked"');
  });
});

// A kernel to probe with: the built guest kernel when there is one (this test then also runs
// after `beetroot build kernel`), else nothing to do.
async function probeKernel(): Promise<string | undefined> {
  try {
    const { kernelArtifact } = await import("../kernel/artifact.ts");
    return kernelArtifact().vmlinux;
  } catch {
    return undefined;
  }
}
const kernel = await probeKernel();
const tscKhz = (await import("../kernel/tsc.ts")).hostTscKhz().then(
  (r) => r.khz,
  () => undefined,
);
const qemu = "/usr/bin/qemu-system-x86_64";
const busybox = "/bin/busybox";
const missing = [
  !kernel && "guest kernel (npx beetroot build kernel)",
  !existsSync(qemu) && qemu,
  !existsSync(busybox) && busybox,
].filter(Boolean);
skipReason(
  import.meta.url,
  setupMissing(missing.length ? `missing ${missing.join(", ")} (npx beetroot setup)` : undefined),
);

describe.skipIf(missing.length > 0)("probe boot", () => {
  it("reaches its marker under TCG, so the probe itself works here", async () => {
    const r = await probeBoot(
      { qemu, kernel: kernel!, busybox, timeoutMs: 30_000, tscKhz: await tscKhz },
      "tcg",
    );
    expect(r.reason).toMatch(/reached userspace/);
    expect(r.ok).toBe(true);
  });

  it("gives a one-line reason when KVM cannot run the guest", async () => {
    const r = await probeKvm({
      qemu,
      kernel: kernel!,
      busybox,
      timeoutMs: 15_000,
      kvmDevice: "/nonexistent/kvm",
    });
    expect(r).toEqual({ ok: false, reason: "/nonexistent/kvm does not exist", elapsedMs: 0 });
  });
});
