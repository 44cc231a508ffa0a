// Child process for ledger.parallel.test.ts: one owner writing and reading its ledger while
// other owners do the same in other processes. argv: libDir owner count dataDir exit-mode
import { unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openLedger } from "../ledger.ts";

const [libDir, owner, countArg, dataDir, mode] = process.argv.slice(2);
if (!libDir || !owner || !countArg || !dataDir || (mode !== "close" && mode !== "crash")) {
  process.stderr.write("usage: ledger-worker libDir owner count dataDir close|crash\n");
  process.exit(2);
}
const count = Number(countArg);
const ledger = await openLedger(owner, { libDir });
const ids: string[] = [];
for (let i = 0; i < count; i++) {
  const path = join(dataDir, `${owner}-${i}`);
  ids.push(await ledger.record({ kind: "file", path }, `file-${i}`));
  writeFileSync(path, owner);
}
// Release every even-numbered resource, as a VM would release what it no longer needs.
for (let i = 0; i < count; i += 2) {
  unlinkSync(join(dataDir, `${owner}-${i}`));
  await ledger.release(ids[i]!);
}
const listed = (await ledger.list()).map((e) => e.label);
process.stdout.write(`${JSON.stringify({ owner, listed })}\n`);
if (mode === "crash") process.kill(process.pid, "SIGKILL");
await ledger.close();
