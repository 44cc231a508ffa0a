import { parseArgs } from "node:util";
import { beetrootPaths } from "../config/paths.ts";
import { createLogger } from "../log/logger.ts";
import { collectGarbage } from "../state/gc.ts";
import { allReleasers } from "./releasers.ts";

/**
 * `beetroot gc [--dry-run] [--json] [owner...]`: releases what crashed owners left behind.
 * Owners whose process is alive (their ledger is locked) are reported and left alone.
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
    },
    allowPositionals: true,
  });
  const paths = beetrootPaths();
  const log = createLogger({ fd: values.verbose ? 2 : null, level: "debug" });
  const sweeps = await collectGarbage({
    paths,
    releasers: allReleasers(),
    log,
    dryRun: values["dry-run"],
    ...(positionals.length > 0 && { owners: positionals }),
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(sweeps, null, 2)}\n`);
  } else if (sweeps.length === 0) {
    process.stdout.write("gc: no ledgers, nothing to do\n");
  } else {
    for (const s of sweeps) {
      process.stdout.write(`${s.owner}: ${s.status}\n`);
      for (const r of s.released) process.stdout.write(`  released ${r}\n`);
      for (const r of s.pending) process.stdout.write(`  would release ${r}\n`);
      for (const f of s.failed) process.stdout.write(`  FAILED ${f.resource}: ${f.error}\n`);
    }
  }
  return sweeps.some((s) => s.failed.length > 0) ? 1 : 0;
}
