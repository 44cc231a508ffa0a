import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import type { Accel } from "../config/config.ts";
import { cachedFact } from "../config/fact-cache.ts";
import type { KvmProbeInputs, KvmProbeResult } from "./kvm-probe.ts";
import type { Accelerator } from "./qemu-args.ts";

/**
 * Which accelerator a VM gets. Fast path silent, expensive path loud: KVM only after a real probe
 * boot succeeded on this host (cached per host kernel + QEMU version + guest kernel), TCG
 * otherwise, announced with the reason and the cost.
 */
export interface AccelDecision {
  readonly accel: Accelerator;
  /** Why: "configured accel = tcg", "KVM probe failed: …", "KVM probe passed …". */
  readonly reason: string;
  /** Set when the VM runs under TCG: the line to log once per VM. */
  readonly announcement?: string;
  readonly probe?: CachedProbe;
}

export interface CachedProbe extends KvmProbeResult {
  readonly key: ProbeKey;
  readonly probedAt: string;
  /** True when this answer came from the cache file. */
  readonly cached: boolean;
}

export interface ProbeKey {
  readonly hostKernel: string;
  readonly qemuVersion: string;
  /** Guest kernel identity (its build fingerprint): PVM breaks some guest kernels, not others. */
  readonly guestKernel: string;
}

export class AccelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AccelError";
  }
}

/** Roughly what TCG costs, for the announcement; binary translation vs. hardware virtualisation. */
export const TCG_SLOWDOWN =
  "guest CPU-bound work runs ~5-20x slower than under KVM; a VM boots in ~1 s instead of ~0.2 s";

export function tcgAnnouncement(reason: string): string {
  return `using TCG software emulation (${reason}); ${TCG_SLOWDOWN}`;
}

/** `qemu --version`, remembered in `cacheDir` (when given) for as long as the binary is unchanged. */
export async function qemuVersion(qemu: string, cacheDir?: string): Promise<string> {
  if (cacheDir === undefined) return runQemuVersion(qemu);
  const st = statSync(qemu);
  const key = { qemu, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  return cachedFact(join(cacheDir, "facts", "qemu-version.json"), key, () => runQemuVersion(qemu));
}

async function runQemuVersion(qemu: string): Promise<string> {
  const r = await execa(qemu, ["--version"], { reject: false, timeout: 10_000, stdin: "ignore" });
  const m = /QEMU emulator version (\S+)/.exec(String(r.stdout));
  if (!m)
    throw new Error(
      `cannot read the QEMU version from \`${qemu} --version\`: ${String(r.stderr || r.stdout).slice(0, 200)}`,
    );
  return m[1]!;
}

const cacheFile = (cacheDir: string) => join(cacheDir, "kvm-probe.json");

function readCache(cacheDir: string, key: ProbeKey): CachedProbe | undefined {
  try {
    const c = JSON.parse(readFileSync(cacheFile(cacheDir), "utf8")) as CachedProbe;
    if (
      c.key?.hostKernel === key.hostKernel &&
      c.key.qemuVersion === key.qemuVersion &&
      c.key.guestKernel === key.guestKernel &&
      typeof c.ok === "boolean" &&
      typeof c.reason === "string"
    ) {
      return { ...c, cached: true };
    }
  } catch {
    // missing or unreadable: probe again
  }
  return undefined;
}

function writeCache(cacheDir: string, probe: CachedProbe): void {
  mkdirSync(cacheDir, { recursive: true });
  const file = cacheFile(cacheDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...probe, cached: undefined }, null, 2)}\n`);
  renameSync(tmp, file);
}

export interface AccelInputs {
  readonly configured: Accel;
  readonly cacheDir: string;
  readonly probeInputs: KvmProbeInputs;
  readonly guestKernelId: string;
  /** Ignore the cache and probe again. */
  readonly reprobe?: boolean;
  /** Injected for tests; the real probe boots QEMU. */
  readonly probe?: (i: KvmProbeInputs) => Promise<KvmProbeResult>;
  readonly hostKernel?: string;
  readonly qemuVersion?: string;
}

/** The probe result for this host, from the cache when the key matches. */
export async function kvmProbe(i: AccelInputs): Promise<CachedProbe> {
  const key: ProbeKey = {
    hostKernel: i.hostKernel ?? release(),
    qemuVersion: i.qemuVersion ?? (await qemuVersion(i.probeInputs.qemu, i.cacheDir)),
    guestKernel: i.guestKernelId,
  };
  if (!i.reprobe) {
    const hit = readCache(i.cacheDir, key);
    if (hit) return hit;
  }
  const run = i.probe ?? (await import("./kvm-probe.ts")).probeKvm;
  const result = await run(i.probeInputs);
  const probe: CachedProbe = { ...result, key, probedAt: new Date().toISOString(), cached: false };
  writeCache(i.cacheDir, probe);
  return probe;
}

export async function decideAccel(i: AccelInputs): Promise<AccelDecision> {
  if (i.configured === "tcg") {
    const reason = "accel = tcg is configured";
    return { accel: "tcg", reason, announcement: tcgAnnouncement(reason) };
  }
  const probe = await kvmProbe(i);
  if (probe.ok) return { accel: "kvm", reason: `KVM probe passed (${probe.reason})`, probe };
  if (i.configured === "kvm") {
    throw new AccelError(
      `accel = kvm is configured but KVM does not work on this host: ${probe.reason}` +
        ` (probe of ${probe.probedAt}; set accel = "auto" or "tcg" in the [vm] table of the config file, or fix KVM and run \`beetroot doctor --reprobe\`)`,
    );
  }
  const reason = `KVM probe failed: ${probe.reason}`;
  return { accel: "tcg", reason, announcement: tcgAnnouncement(reason), probe };
}
