import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_VM_CONFIG, loadConfig, parseConfig } from "./config.ts";

describe("config.toml", () => {
  it("defaults every key", () => {
    expect(parseConfig("", "c.toml").vm).toEqual(DEFAULT_VM_CONFIG);
    expect(loadConfig({ configFile: "/nonexistent/beetroot.toml" })).toEqual({
      source: "defaults",
      vm: DEFAULT_VM_CONFIG,
    });
  });

  it("reads the [vm] table", () => {
    const cfg = parseConfig(
      '[vm]\naccel = "tcg"\ncpus = 2\nmemory_mib = 1024\nboot_timeout_ms = 5000\nkvm_probe_timeout_ms = 2000\n',
      "c.toml",
    );
    expect(cfg.vm).toEqual({
      accel: "tcg",
      cpus: 2,
      memoryMiB: 1024,
      bootTimeoutMs: 5000,
      kvmProbeTimeoutMs: 2000,
    });
  });

  it("names the file, the key and the problem", () => {
    expect(() => parseConfig('[vm]\naccel = "xen"\n', "c.toml")).toThrow(
      'c.toml [vm]: accel must be one of auto, kvm, tcg, got "xen"',
    );
    expect(() => parseConfig("[vm]\nmemroy_mib = 1\n", "c.toml")).toThrow(
      /c.toml \[vm\]: unknown key "memroy_mib"/,
    );
    expect(() => parseConfig("[vm]\ncpus = 0\n", "c.toml")).toThrow(
      "c.toml [vm]: cpus must be an integer in 1..64, got 0",
    );
    expect(() => parseConfig("accel = 1\n", "c.toml")).toThrow(/c.toml: unknown key "accel"/);
    expect(() => parseConfig("[vm\n", "c.toml")).toThrow(ConfigError);
    expect(() => parseConfig("[vm\n", "c.toml")).toThrow(/^c.toml:1:\d+: /);
  });

  it("loads a file from disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-config-"));
    try {
      const file = join(dir, "config.toml");
      writeFileSync(file, '[vm]\naccel = "kvm"\n');
      expect(loadConfig({ configFile: file })).toMatchObject({ source: file, vm: { accel: "kvm", cpus: 1 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
