import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type BeetrootPaths, beetrootPaths } from "../config/paths.ts";

/**
 * The built kernel as the rest of beetroot sees it: `<assetsDir>/kernel/<fingerprint>/vmlinux`
 * plus `meta.json`, and `<assetsDir>/kernel/current.json` naming the fingerprint the last
 * successful `beetroot build kernel` produced. Readers (the shim, tests) follow `current.json`, so
 * they need neither the kernel source nor the repository's fragment at run time.
 */
export const KERNEL_RECIPE_VERSION = 2;

export interface KernelInputs {
  /** Debian linux-source-6.12 package version, e.g. `6.12.117-1`. */
  readonly sourcePackageVersion: string;
  readonly fragment: string;
  /** patchSetDigest() of assets/kernel/patches. */
  readonly patches: string;
  readonly kvmGuestConfig: string;
  /** First line of `gcc --version`. */
  readonly gccVersion: string;
}

export function kernelFingerprint(inputs: KernelInputs): string {
  return createHash("sha256")
    .update(
      JSON.stringify({
        recipe: KERNEL_RECIPE_VERSION,
        base: "tinyconfig",
        source: inputs.sourcePackageVersion,
        fragment: inputs.fragment,
        patches: inputs.patches,
        kvmGuest: inputs.kvmGuestConfig,
        gcc: inputs.gccVersion,
      }),
    )
    .digest("hex");
}

export interface KernelMeta {
  readonly fingerprint: string;
  /** `uname -r` of the built kernel, e.g. `6.12.117-beetroot`. */
  readonly version: string;
  readonly sourcePackageVersion: string;
  readonly gccVersion: string;
  readonly builtAt: string;
  readonly buildSeconds: number;
  readonly vmlinuxBytes: number;
  /** assets/kernel/patches applied, by file name (absent in kernels built before patches existed). */
  readonly patches?: readonly string[];
}

/**
 * The patch that makes every vsock TX packet one linear buffer, so vhost-device-vsock 0.3.0 can
 * take packets larger than ~32 KiB (internal/vm/vsock.ts sizes the credit window by it).
 */
export const LINEAR_VSOCK_TX_PATCH = "0001-vsock-linear-tx-packets.patch";

/** What the host must know about a guest kernel to drive it, read from its artifact files. */
export interface KernelTraits {
  /** CONFIG_HZ (the kernel's `config` beside vmlinux); undefined for a kernel from elsewhere. */
  readonly hz: number | undefined;
  /** Whether LINEAR_VSOCK_TX_PATCH is in (the artifact's meta.json). */
  readonly linearVsockTx: boolean;
}

export interface KernelArtifact {
  /** Uncompressed PVH ELF, debug info stripped: QEMU `-kernel` for `-M microvm`. */
  readonly vmlinux: string;
  /** The final .config it was built from. */
  readonly config: string;
  readonly fingerprint: string;
  readonly version: string;
  readonly meta: KernelMeta;
}

export class KernelMissingError extends Error {
  constructor(what: string) {
    super(`${what}: run \`npx beetroot build kernel\` to build the guest kernel`);
    this.name = "KernelMissingError";
  }
}

/** Traits of the kernel at `vmlinux`, from the `config` and `meta.json` an artifact keeps beside it. */
export function kernelTraits(vmlinux: string): KernelTraits {
  const config = join(dirname(vmlinux), "config");
  const meta = join(dirname(vmlinux), "meta.json");
  const hz = existsSync(config) ? /^CONFIG_HZ=(\d+)$/m.exec(readFileSync(config, "utf8"))?.[1] : undefined;
  let patches: readonly string[] = [];
  try {
    patches = (JSON.parse(readFileSync(meta, "utf8")) as Partial<KernelMeta>).patches ?? [];
  } catch {
    // no artifact metadata: assume an unpatched kernel
  }
  return { hz: hz ? Number(hz) : undefined, linearVsockTx: patches.includes(LINEAR_VSOCK_TX_PATCH) };
}

export function kernelDir(paths: BeetrootPaths, fingerprint: string): string {
  return join(paths.assetsDir, "kernel", fingerprint);
}

const currentFile = (paths: BeetrootPaths) => join(paths.assetsDir, "kernel", "current.json");

/** The artifact for one fingerprint, or undefined when it is not (completely) there. */
export function findKernel(paths: BeetrootPaths, fingerprint: string): KernelArtifact | undefined {
  const dir = kernelDir(paths, fingerprint);
  const metaFile = join(dir, "meta.json");
  const vmlinux = join(dir, "vmlinux");
  if (!existsSync(metaFile) || !existsSync(vmlinux)) return undefined;
  const meta = JSON.parse(readFileSync(metaFile, "utf8")) as KernelMeta;
  if (meta.fingerprint !== fingerprint) return undefined;
  return { vmlinux, config: join(dir, "config"), fingerprint, version: meta.version, meta };
}

export function markCurrent(paths: BeetrootPaths, fingerprint: string): void {
  const file = currentFile(paths);
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ fingerprint })}\n`);
  renameSync(`${file}.tmp`, file);
}

/** The kernel the last successful build produced; throws naming `npx beetroot build kernel` if none. */
export function kernelArtifact(paths: BeetrootPaths = beetrootPaths()): KernelArtifact {
  const file = currentFile(paths);
  if (!existsSync(file)) throw new KernelMissingError(`no guest kernel has been built (${file} is missing)`);
  let fingerprint: unknown;
  try {
    fingerprint = (JSON.parse(readFileSync(file, "utf8")) as { fingerprint?: unknown }).fingerprint;
  } catch {
    throw new KernelMissingError(`${file} is corrupt`);
  }
  if (typeof fingerprint !== "string" || !/^[0-9a-f]{64}$/.test(fingerprint)) {
    throw new KernelMissingError(`${file} names no valid fingerprint`);
  }
  const artifact = findKernel(paths, fingerprint);
  if (!artifact)
    throw new KernelMissingError(
      `the kernel ${kernelDir(paths, fingerprint)} named by ${file} is incomplete or gone`,
    );
  return artifact;
}
