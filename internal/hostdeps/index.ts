import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";
import { upstreamVersion } from "./debian-version.ts";
import { type Manifest, type ManifestSet, manifestPath, readManifest } from "./manifest.ts";

/**
 * The public face of this folder: where everything `beetroot setup` installed lives. Other parts
 * of beetroot call `loadHostDeps()` instead of guessing paths; it reads the manifest setup wrote
 * and checks the files are still there.
 */

export interface ContainerdInstall {
  /** Debian package version, e.g. `2.1.9+ds1-5`. */
  readonly version: string;
  readonly root: string;
  /** Directory holding containerd, ctr and containerd-shim-runc-v2 (put it first on PATH). */
  readonly binDir: string;
  readonly containerd: string;
  readonly ctr: string;
  readonly shimRuncV2: string;
  /** The host's runc (bookworm's; the newer suites' runc needs glibc 2.38). */
  readonly runc: string;
}

export interface ErofsUtils {
  readonly version: string;
  /** Wrappers that run trixie's binaries with trixie's glibc; the directory can go on PATH. */
  readonly binDir: string;
  readonly mkfsErofs: string;
  readonly fsckErofs: string;
  readonly dumpErofs: string;
}

export interface GuestUserspace {
  /** A merged-/usr tree with crun, its libraries and trixie's glibc: copy it into the guest image. */
  readonly root: string;
  readonly crunVersion: string;
  readonly libcVersion: string;
  /** crun inside root (runs in the guest as /usr/bin/crun). */
  readonly crun: string;
  /** crun wrapped to run on this host (for checks), through the tree's own loader. */
  readonly crunWrapper: string;
  readonly dynamicLoader: string;
  readonly packages: readonly { readonly name: string; readonly version: string }[];
}

export interface HostDeps {
  readonly containerd: { readonly "2.1": ContainerdInstall; readonly "1.7": ContainerdInstall };
  readonly vhostDeviceVsock: string;
  readonly vhostDeviceVsockVersion: string;
  /** virtiofsd (wrapped to run through its set's loader), for volumes. */
  readonly virtiofsd: string;
  readonly erofs: ErofsUtils;
  /** Same as `erofs.mkfsErofs`: mkfs.erofs >= 1.8. */
  readonly mkfsErofs: string;
  /** `usr/src/linux-source-6.12.tar.xz` from Debian's linux-source-6.12. */
  readonly linuxSourceTarball: string;
  /** Debian package version of that tarball, e.g. `6.12.117-1`. */
  readonly linuxSourceVersion: string;
  /** Upstream kernel version, e.g. `6.12.117`. */
  readonly linuxUpstreamVersion: string;
  readonly guestUserspace: GuestUserspace;
  readonly guestUserspaceRoot: string;
  /** GOPATH root with containerd's Go ttrpc >= 1.2 (streaming), for interop tests and benchmarks. */
  readonly goTtrpc: { readonly gopath: string; readonly version: string };
  /** From the machine's own suite. */
  readonly qemu: string;
  readonly cniPluginDir: string;
  readonly busyboxStatic: string;
  readonly runc: string;
  readonly manifestPath: string;
}

export class HostDepsMissingError extends Error {
  constructor(what: string) {
    super(`${what}: run \`npx beetroot setup\` (as root) to install beetroot's host dependencies`);
    this.name = "HostDepsMissingError";
  }
}

function set(manifest: Manifest, name: string, file: string): ManifestSet {
  const s = manifest.sets[name];
  if (!s) throw new HostDepsMissingError(`${file} has no "${name}" set`);
  for (const [role, path] of Object.entries(s.files)) {
    if (!existsSync(path)) throw new HostDepsMissingError(`${name}: ${role} ${path} is missing`);
  }
  return s;
}

function file(s: ManifestSet, role: string, name: string): string {
  const f = s.files[role];
  if (f === undefined)
    throw new HostDepsMissingError(
      `${name} in the manifest lacks "${role}" (manifest from another beetroot version)`,
    );
  return f;
}

function containerdFrom(manifest: Manifest, name: string, mf: string, runc: string): ContainerdInstall {
  const s = set(manifest, name, mf);
  const containerd = file(s, "containerd", name);
  return {
    version: s.version,
    root: s.root,
    binDir: dirname(containerd),
    containerd,
    ctr: file(s, "ctr", name),
    shimRuncV2: file(s, "shimRuncV2", name),
    runc,
  };
}

export function loadHostDeps(paths: BeetrootPaths = beetrootPaths()): HostDeps {
  const mf = manifestPath(paths.prefixDir);
  const manifest = readManifest(paths.prefixDir);
  if (!manifest) throw new HostDepsMissingError(`${mf} does not exist or is from another beetroot version`);

  const vsock = set(manifest, "vhost-device-vsock", mf);
  const erofsSet = set(manifest, "erofs-utils", mf);
  const kernelSrc = set(manifest, "linux-source-6.12", mf);
  const guest = set(manifest, "guest-userspace", mf);
  const goTtrpc = set(manifest, "go-ttrpc", mf);
  const virtiofs = set(manifest, "virtiofsd", mf);
  for (const [role, path] of Object.entries(manifest.system.files)) {
    if (!existsSync(path)) throw new HostDepsMissingError(`system ${role} ${path} is missing`);
  }
  const mkfsErofs = file(erofsSet, "mkfsErofs", "erofs-utils");
  const version = (s: ManifestSet, pkg: string) =>
    s.packages.find((p) => p.name === pkg)?.version ?? s.version;
  const guestUserspace: GuestUserspace = {
    root: guest.root,
    crunVersion: version(guest, "crun"),
    libcVersion: version(guest, "libc6"),
    crun: file(guest, "crun", "guest-userspace"),
    crunWrapper: file(guest, "crunWrapper", "guest-userspace"),
    dynamicLoader: file(guest, "dynamicLoader", "guest-userspace"),
    packages: guest.packages.map((p) => ({ name: p.name, version: p.version })),
  };
  const sys = (role: string) => {
    const f = manifest.system.files[role];
    if (f === undefined) throw new HostDepsMissingError(`the manifest lacks the system file "${role}"`);
    return f;
  };
  return {
    containerd: {
      "2.1": containerdFrom(manifest, "containerd-2.1", mf, sys("runc")),
      "1.7": containerdFrom(manifest, "containerd-1.7", mf, sys("runc")),
    },
    vhostDeviceVsock: file(vsock, "vhostDeviceVsock", "vhost-device-vsock"),
    vhostDeviceVsockVersion: vsock.version,
    virtiofsd: file(virtiofs, "virtiofsd", "virtiofsd"),
    erofs: {
      version: erofsSet.version,
      binDir: dirname(mkfsErofs),
      mkfsErofs,
      fsckErofs: file(erofsSet, "fsckErofs", "erofs-utils"),
      dumpErofs: file(erofsSet, "dumpErofs", "erofs-utils"),
    },
    mkfsErofs,
    linuxSourceTarball: file(kernelSrc, "tarball", "linux-source-6.12"),
    linuxSourceVersion: kernelSrc.version,
    linuxUpstreamVersion: upstreamVersion(kernelSrc.version),
    guestUserspace,
    guestUserspaceRoot: guest.root,
    goTtrpc: { gopath: file(goTtrpc, "gopath", "go-ttrpc"), version: goTtrpc.version },
    qemu: sys("qemu"),
    cniPluginDir: sys("cniPluginDir"),
    busyboxStatic: sys("busyboxStatic"),
    runc: sys("runc"),
    manifestPath: mf,
  };
}
