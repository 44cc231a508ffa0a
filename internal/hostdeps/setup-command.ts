import { beetrootPaths } from "../config/paths.ts";
import { SetupError } from "./errors.ts";
import { runSetup } from "./setup.ts";

const usage = `usage: beetroot setup [--refresh] [--max-list-age HOURS]

Installs everything beetroot needs on this host (Debian 12/13, as root), idempotently:
system packages from the machine's own suite with apt-get, and containerd 2.1/1.7,
vhost-device-vsock, erofs-utils >= 1.8, linux-source-6.12 and the guest's crun from
trixie/sid, unpacked into ${beetrootPaths().prefixDir} through a private apt configuration.

  --refresh             fetch the trixie/sid package lists even if they are fresh
  --max-list-age HOURS  reuse package lists younger than this (default 12)
`;

export interface SetupArgs {
  readonly refresh: boolean;
  readonly maxListAgeHours: number;
  readonly help: boolean;
}

export function parseSetupArgs(args: readonly string[]): SetupArgs {
  let refresh = false;
  let help = false;
  let maxListAgeHours = 12;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--refresh") refresh = true;
    else if (a === "-h" || a === "--help") help = true;
    else if (a === "--max-list-age" || a.startsWith("--max-list-age=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      const n = Number(v);
      if (v === undefined || v === "" || !Number.isFinite(n) || n < 0) {
        throw new SetupError(
          `--max-list-age needs a number of hours, got ${v === undefined ? "nothing" : `"${v}"`}`,
          usage.split("\n")[0]!,
        );
      }
      maxListAgeHours = n;
    } else throw new SetupError(`unknown argument "${a}"`, usage.split("\n")[0]!);
  }
  return { refresh, maxListAgeHours, help };
}

export async function main(args: string[]): Promise<number> {
  const started = Date.now();
  const stamp = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
  const log = (line: string) => process.stdout.write(`[setup ${stamp()}] ${line}\n`);
  try {
    const parsed = parseSetupArgs(args);
    if (parsed.help) {
      process.stdout.write(usage);
      return 0;
    }
    const report = await runSetup({
      paths: beetrootPaths(),
      refresh: parsed.refresh,
      maxListAgeHours: parsed.maxListAgeHours,
      log,
    });
    // The network layer's syscall addon is compiled with the host's cc from source embedded in the
    // bundle; doing it here keeps the first container start from paying for it.
    const { buildAddon } = await import("../network/native/addon.ts");
    log(`network addon ${await buildAddon()}`);
    const installed = report.rows.filter((r) => r.state === "installed").length;
    log(
      `done: ${report.rows.length} sets (${installed} installed, ${report.rows.length - installed} cached); manifest ${beetrootPaths().prefixDir}/manifest.json`,
    );
    return 0;
  } catch (err) {
    if (err instanceof SetupError) {
      process.stderr.write(`beetroot setup: ${err.what}\n  → ${err.remedy}\n`);
      return 1;
    }
    throw err;
  }
}
