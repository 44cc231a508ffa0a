import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { beetrootPaths } from "../config/paths.ts";
import {
  type KernelInputs,
  KernelMissingError,
  kernelArtifact,
  kernelDir,
  kernelFingerprint,
  kernelTraits,
  LINEAR_VSOCK_TX_PATCH,
  markCurrent,
} from "./artifact.ts";
import { defaultFragmentPath } from "./build.ts";
import { parseKernelBuildArgs } from "./build-command.ts";

const inputs: KernelInputs = {
  sourcePackageVersion: "6.12.117-1",
  fragment: "CONFIG_PVH=y\n",
  patches: "0".repeat(64),
  kvmGuestConfig: "CONFIG_KVM_GUEST=y\n",
  gccVersion: "gcc (Debian 12.2.0-14+deb12u1) 12.2.0",
};

describe("kernel fingerprint", () => {
  it("changes with every input", () => {
    const base = kernelFingerprint(inputs);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(kernelFingerprint({ ...inputs })).toBe(base);
    for (const key of Object.keys(inputs) as (keyof KernelInputs)[]) {
      expect(kernelFingerprint({ ...inputs, [key]: `${inputs[key]}x` }), key).not.toBe(base);
    }
  });
});

describe("kernelArtifact", () => {
  const paths = beetrootPaths({ BEETROOT_CACHE_DIR: mkdtempSync(join(tmpdir(), "beetroot-kernel-")) });
  const fp = kernelFingerprint(inputs);

  it("says to build the kernel when none was built", () => {
    expect(() => kernelArtifact(paths)).toThrow(KernelMissingError);
    expect(() => kernelArtifact(paths)).toThrow(/run `npx beetroot build kernel`/);
  });

  it("follows current.json to a complete artifact, and refuses an incomplete one", () => {
    const dir = kernelDir(paths, fp);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "vmlinux"), "ELF");
    writeFileSync(join(dir, "meta.json"), JSON.stringify({ fingerprint: fp, version: "6.12.117-beetroot" }));
    markCurrent(paths, fp);
    const a = kernelArtifact(paths);
    expect(a).toMatchObject({ vmlinux: join(dir, "vmlinux"), fingerprint: fp, version: "6.12.117-beetroot" });
    rmSync(join(dir, "vmlinux"));
    expect(() => kernelArtifact(paths)).toThrow(/incomplete or gone.*npx beetroot build kernel/);
  });

  it("rejects a corrupt pointer", () => {
    writeFileSync(join(paths.assetsDir, "kernel", "current.json"), '{"fingerprint":"../../etc"}');
    expect(() => kernelArtifact(paths)).toThrow(/names no valid fingerprint/);
  });
});

describe("build kernel command", () => {
  it("parses its arguments and rejects bad ones", () => {
    expect(parseKernelBuildArgs([])).toEqual({ force: false, help: false });
    expect(parseKernelBuildArgs(["--force", "--jobs", "2", "--fragment=/x.config"])).toEqual({
      force: true,
      help: false,
      jobs: 2,
      fragment: "/x.config",
    });
    expect(() => parseKernelBuildArgs(["--jobs", "0"])).toThrow(/positive integer, got "0"/);
    expect(() => parseKernelBuildArgs(["--fragment"])).toThrow(/--fragment needs a value/);
    expect(() => parseKernelBuildArgs(["kernel"])).toThrow(/unknown argument "kernel"/);
  });
  it("finds the repository's fragment from this folder and from dist/", () => {
    const fromSource = defaultFragmentPath(import.meta.dirname);
    expect(fromSource.endsWith("assets/kernel/beetroot.config")).toBe(true);
    expect(defaultFragmentPath(join(import.meta.dirname, "../../dist"))).toBe(fromSource);
    expect(() => defaultFragmentPath("/")).toThrow(/not found above \//);
  });
});

describe("kernelTraits", () => {
  it("reads HZ from the config and the vsock patch from meta.json beside vmlinux", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-traits-"));
    try {
      const vmlinux = join(dir, "vmlinux");
      expect(kernelTraits(vmlinux)).toEqual({ hz: undefined, linearVsockTx: false });
      writeFileSync(join(dir, "config"), "CONFIG_HZ_250=y\nCONFIG_HZ=250\n");
      writeFileSync(join(dir, "meta.json"), JSON.stringify({ patches: [LINEAR_VSOCK_TX_PATCH] }));
      expect(kernelTraits(vmlinux)).toEqual({ hz: 250, linearVsockTx: true });
      writeFileSync(join(dir, "meta.json"), JSON.stringify({ fingerprint: "old, before patches" }));
      expect(kernelTraits(vmlinux).linearVsockTx).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
