import { beetrootPaths } from "../config/paths.ts";
import { HostDepsMissingError } from "../hostdeps/index.ts";
import { buildKernel, KernelBuildError } from "./build.ts";

const usage = `usage: beetroot build kernel [--force] [--jobs N] [--fragment PATH]

Builds the guest kernel (Linux 6.12 from Debian's linux-source-6.12; tinyconfig + kvm_guest.config
+ assets/kernel/beetroot.config, all built in) into <assetsDir>/kernel/<fingerprint>/vmlinux.
Unchanged inputs reuse the cached kernel.
`;

export interface KernelBuildArgs {
  readonly force: boolean;
  readonly jobs?: number;
  readonly fragment?: string;
  readonly help: boolean;
}

export function parseKernelBuildArgs(args: readonly string[]): KernelBuildArgs {
  let force = false;
  let help = false;
  let jobs: number | undefined;
  let fragment: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string) => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      if (v === undefined || v === "")
        throw new KernelBuildError(`${name} needs a value`, usage.split("\n")[0]!);
      return v;
    };
    if (a === "--force") force = true;
    else if (a === "-h" || a === "--help") help = true;
    else if (a === "--jobs" || a.startsWith("--jobs=") || a === "-j") {
      const v = value("--jobs");
      if (!/^[1-9]\d*$/.test(v))
        throw new KernelBuildError(`--jobs needs a positive integer, got "${v}"`, usage.split("\n")[0]!);
      jobs = Number(v);
    } else if (a === "--fragment" || a.startsWith("--fragment=")) fragment = value("--fragment");
    else throw new KernelBuildError(`unknown argument "${a}"`, usage.split("\n")[0]!);
  }
  return {
    force,
    help,
    ...(jobs !== undefined ? { jobs } : {}),
    ...(fragment !== undefined ? { fragment } : {}),
  };
}

/** Entry for `beetroot build kernel` (see internal/assets/builders.ts). */
export async function build(args: string[]): Promise<number> {
  const started = Date.now();
  const log = (line: string) => {
    const secs = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
    process.stdout.write(`[kernel ${secs}s] ${line}\n`);
  };
  try {
    const parsed = parseKernelBuildArgs(args);
    if (parsed.help) {
      process.stdout.write(usage);
      return 0;
    }
    const r = await buildKernel({
      paths: beetrootPaths(),
      log,
      force: parsed.force,
      ...(parsed.jobs !== undefined ? { jobs: parsed.jobs } : {}),
      ...(parsed.fragment !== undefined ? { fragmentPath: parsed.fragment } : {}),
    });
    const mb = (r.artifact.meta.vmlinuxBytes / 1e6).toFixed(1);
    log(
      `${r.artifact.version} ${r.cached ? "cached" : `built in ${r.artifact.meta.buildSeconds} s`}: ${r.artifact.vmlinux} (${mb} MB)`,
    );
    return 0;
  } catch (err) {
    if (err instanceof KernelBuildError) {
      process.stderr.write(`beetroot build kernel: ${err.what}\n  → ${err.remedy}\n`);
      return 1;
    }
    if (err instanceof HostDepsMissingError) {
      process.stderr.write(`beetroot build kernel: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
