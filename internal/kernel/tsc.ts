import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { cachedFact } from "../config/fact-cache.ts";

/**
 * The host's TSC rate in kHz, for the guest's `tsc_early_khz=`. Under TCG the guest reads the
 * host's TSC; without the hint the guest calibrates against emulated timers, which under load
 * mis-measures and hangs ~3/4 of microvm boots (design.md §5). The rate is derived, never assumed:
 * the host kernel's own calibration (refined if it got that far, else the early one), then
 * /proc/cpuinfo when the CPU says its TSC is invariant.
 */
export interface TscRate {
  readonly khz: number;
  /** Where the number came from, for logs and `beetroot doctor`. */
  readonly source: string;
}

/** `2596.122` (MHz, as the kernel prints it) → 2596122 kHz without floating-point rounding. */
export function mhzToKhz(mhz: string): number {
  const m = /^(\d+)(?:\.(\d{1,3})\d*)?$/.exec(mhz.trim());
  if (!m) throw new Error(`not a MHz figure: "${mhz}"`);
  return Number(m[1]) * 1000 + Number((m[2] ?? "").padEnd(3, "0"));
}

/** Finds the TSC rate in kernel log text; the refined calibration beats the early detection. */
export function tscFromKernelLog(log: string): number | undefined {
  const refined = /tsc: Refined TSC clocksource calibration: (\d+(?:\.\d+)?) MHz/.exec(log);
  if (refined) return mhzToKhz(refined[1]!);
  const detected = /tsc: Detected (\d+(?:\.\d+)?) MHz processor/.exec(log);
  if (detected) return mhzToKhz(detected[1]!);
  return undefined;
}

/** /proc/cpuinfo's "cpu MHz" is the TSC rate only when the TSC is invariant (constant_tsc + nonstop_tsc). */
export function tscFromCpuinfo(cpuinfo: string): number | undefined {
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.split(/\s+/) ?? [];
  if (!flags.includes("constant_tsc") || !flags.includes("nonstop_tsc")) return undefined;
  const mhz = /^cpu MHz\s*:\s*(\d+(?:\.\d+)?)$/m.exec(cpuinfo)?.[1];
  return mhz === undefined ? undefined : mhzToKhz(mhz);
}

async function output(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { reject: false, timeout: 5_000, stdin: "ignore" });
  return r.exitCode === 0 ? String(r.stdout) : "";
}

/**
 * The host's TSC rate. With `cacheDir` it is remembered per boot (the rate is fixed until the
 * host reboots), so shims do not run dmesg at every start.
 */
export async function hostTscKhz(env: NodeJS.ProcessEnv = process.env, cacheDir?: string): Promise<TscRate> {
  const forced = env.BEETROOT_TSC_KHZ;
  if (forced !== undefined && forced !== "") {
    if (!/^\d+$/.test(forced) || Number(forced) < 100_000) {
      throw new Error(`BEETROOT_TSC_KHZ must be the TSC rate in kHz (e.g. 2596000), got "${forced}"`);
    }
    return { khz: Number(forced), source: "BEETROOT_TSC_KHZ" };
  }
  if (cacheDir !== undefined) {
    const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return cachedFact(join(cacheDir, "facts", "host-tsc.json"), { bootId }, measureTscKhz);
  }
  return measureTscKhz();
}

async function measureTscKhz(): Promise<TscRate> {
  const fromDmesg = tscFromKernelLog(await output("dmesg", []));
  if (fromDmesg !== undefined) return { khz: fromDmesg, source: "dmesg" };
  // The ring buffer may have wrapped on a long-running host; the journal keeps the boot's messages.
  const fromJournal = tscFromKernelLog(await output("journalctl", ["-k", "-b", "--no-pager", "-g", "tsc:"]));
  if (fromJournal !== undefined) return { khz: fromJournal, source: "journalctl -k" };
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // not Linux, or /proc not mounted: fall through to the error
  }
  const fromCpuinfo = tscFromCpuinfo(cpuinfo);
  if (fromCpuinfo !== undefined) return { khz: fromCpuinfo, source: "/proc/cpuinfo" };
  throw new Error(
    "cannot determine the host TSC rate: no 'tsc:' calibration in dmesg or the journal, and /proc/cpuinfo " +
      "shows no invariant TSC; set BEETROOT_TSC_KHZ to the rate in kHz",
  );
}
