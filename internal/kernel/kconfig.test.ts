import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkFragment, describeMismatch, parseKconfig } from "./kconfig.ts";

describe("Kconfig fragment check", () => {
  const fragment = parseKconfig(
    [
      "# comment",
      "# CONFIG_MODULES is not set",
      "CONFIG_ANDROID_BINDER_IPC=y",
      'CONFIG_ANDROID_BINDER_DEVICES="binder,hwbinder,vndbinder"',
      "CONFIG_NR_CPUS=8",
      "CONFIG_EROFS_FS=y",
      "# CONFIG_KERNEL_XZ is not set",
    ].join("\n"),
  );

  it("parses set, unset and string values", () => {
    expect(fragment.get("CONFIG_MODULES")).toBe("n");
    expect(fragment.get("CONFIG_ANDROID_BINDER_DEVICES")).toBe('"binder,hwbinder,vndbinder"');
    expect(fragment.size).toBe(6);
  });

  it("passes when every option survived, counting absent as not set", () => {
    const final = parseKconfig(
      'CONFIG_ANDROID_BINDER_IPC=y\nCONFIG_ANDROID_BINDER_DEVICES="binder,hwbinder,vndbinder"\nCONFIG_NR_CPUS=8\nCONFIG_EROFS_FS=y\n# CONFIG_KERNEL_XZ is not set\n',
    );
    expect(checkFragment(fragment, final)).toEqual([]);
  });

  it("names each dropped or changed option", () => {
    const final = parseKconfig(
      'CONFIG_MODULES=y\nCONFIG_ANDROID_BINDER_DEVICES="binder"\nCONFIG_NR_CPUS=64\n# CONFIG_ANDROID_BINDER_IPC is not set\n',
    );
    const m = checkFragment(fragment, final).map(describeMismatch);
    expect(m).toEqual([
      "CONFIG_MODULES: wanted not set, got y",
      "CONFIG_ANDROID_BINDER_IPC: wanted y, got not set",
      'CONFIG_ANDROID_BINDER_DEVICES: wanted "binder,hwbinder,vndbinder", got "binder"',
      "CONFIG_NR_CPUS: wanted 8, got 64",
      "CONFIG_EROFS_FS: wanted y, got absent (a dependency is off or the option does not exist)",
    ]);
  });

  it("the shipped fragment builds everything in: modules off, no =m anywhere", () => {
    const shipped = parseKconfig(
      readFileSync(join(import.meta.dirname, "../../assets/kernel/beetroot.config"), "utf8"),
    );
    expect(shipped.get("CONFIG_MODULES")).toBe("n");
    expect([...shipped].filter(([, v]) => v === "m")).toEqual([]);
    for (const required of [
      "CONFIG_ANDROID_BINDERFS",
      "CONFIG_DMABUF_HEAPS_SYSTEM",
      "CONFIG_PSI",
      "CONFIG_PVH",
      "CONFIG_EROFS_FS_ZIP_ZSTD",
    ]) {
      expect(shipped.get(required), required).toBe("y");
    }
  });
});
