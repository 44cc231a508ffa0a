import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { beetrootPaths } from "../config/paths.ts";
import { HostDepsMissingError, loadHostDeps } from "./index.ts";
import { MANIFEST_SCHEMA, type Manifest, type ManifestSet, writeManifest } from "./manifest.ts";
import { PREFIX_SETS, SYSTEM_FILES } from "./sets.ts";

/** A prefix tree laid out as setup would leave it, with empty files standing in for the binaries. */
function fakeInstall(): { paths: ReturnType<typeof beetrootPaths>; manifest: Manifest } {
  const cacheDir = mkdtempSync(join(tmpdir(), "beetroot-hostdeps-"));
  const paths = beetrootPaths({ BEETROOT_CACHE_DIR: cacheDir });
  const touch = (f: string) => {
    mkdirSync(join(f, ".."), { recursive: true });
    writeFileSync(f, "");
    return f;
  };
  const versions: Record<string, string> = {
    "containerd-2.1": "2.1.9+ds1-5",
    "containerd-1.7": "1.7.24~ds1-6+deb13u1",
    "vhost-device-vsock": "0.3.0-2",
    "erofs-utils": "1.8.6-1",
    "linux-source-6.12": "6.12.117-1",
    "guest-userspace": "1.21-1",
    "go-ttrpc": "1.2.4-2",
  };
  const sets: Record<string, ManifestSet> = {};
  for (const s of PREFIX_SETS) {
    const root = join(paths.prefixDir, s.name);
    sets[s.name] = {
      suite: s.suite,
      version: versions[s.name]!,
      fingerprint: "x",
      root,
      packages: [{ name: s.roots[0]!.name, version: versions[s.name]!, sha256: "0".repeat(64) }],
      files: Object.fromEntries(Object.entries(s.files).map(([role, rel]) => [role, touch(join(root, rel))])),
      installedAt: "2026-01-01T00:00:00.000Z",
    };
  }
  const system = Object.fromEntries(
    Object.entries(SYSTEM_FILES).map(([role, p]) => [role, touch(join(cacheDir, "sys", p))]),
  );
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    recipe: 1,
    sets,
    system: { packages: [], files: system, checkedAt: "2026-01-01T00:00:00.000Z" },
  };
  writeManifest(paths.prefixDir, manifest);
  return { paths, manifest };
}

describe("loadHostDeps", () => {
  it("maps the manifest to typed paths", () => {
    const { paths } = fakeInstall();
    const deps = loadHostDeps(paths);
    expect(deps.containerd["2.1"].version).toBe("2.1.9+ds1-5");
    expect(deps.containerd["2.1"].containerd).toBe(
      join(paths.prefixDir, "containerd-2.1/usr/bin/containerd"),
    );
    expect(deps.containerd["2.1"].binDir).toBe(join(paths.prefixDir, "containerd-2.1/usr/bin"));
    expect(deps.containerd["1.7"].ctr).toBe(join(paths.prefixDir, "containerd-1.7/usr/bin/ctr"));
    expect(deps.mkfsErofs).toBe(join(paths.prefixDir, "erofs-utils/wrappers/mkfs.erofs"));
    expect(deps.linuxSourceTarball).toBe(
      join(paths.prefixDir, "linux-source-6.12/usr/src/linux-source-6.12.tar.xz"),
    );
    expect(deps.linuxUpstreamVersion).toBe("6.12.117");
    expect(deps.guestUserspace.crun).toBe(join(paths.prefixDir, "guest-userspace/usr/bin/crun"));
    expect(deps.guestUserspaceRoot).toBe(join(paths.prefixDir, "guest-userspace"));
    expect(deps.qemu.endsWith("/usr/bin/qemu-system-x86_64")).toBe(true);
  });

  it("says to run setup when there is no manifest", () => {
    const paths = beetrootPaths({ BEETROOT_CACHE_DIR: mkdtempSync(join(tmpdir(), "beetroot-none-")) });
    expect(() => loadHostDeps(paths)).toThrow(HostDepsMissingError);
    expect(() => loadHostDeps(paths)).toThrow(/manifest.json does not exist.*run `npx beetroot setup`/);
  });

  it("names the missing file when a set was damaged after setup", () => {
    const { paths, manifest } = fakeInstall();
    rmSync(manifest.sets["vhost-device-vsock"]!.files.vhostDeviceVsock!);
    expect(() => loadHostDeps(paths)).toThrow(
      /vhost-device-vsock: vhostDeviceVsock .* is missing: run `npx beetroot setup`/,
    );
  });

  it("names a set absent from the manifest", () => {
    const { paths, manifest } = fakeInstall();
    const { "containerd-1.7": _gone, ...rest } = manifest.sets;
    writeManifest(paths.prefixDir, { ...manifest, sets: rest });
    expect(() => loadHostDeps(paths)).toThrow(/has no "containerd-1.7" set/);
  });
});
