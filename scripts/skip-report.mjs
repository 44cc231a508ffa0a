// After the suites: every skipped test with the reason its file recorded (test/fixtures/skip.ts).
// Exits 1 when a skip is for something `beetroot setup` or the build should have provided, or when a
// test skipped without recording why: on the README's test command only missing hardware or
// images may skip (a skip that hides a missing install step is a failure a green run would hide).
// usage: node scripts/skip-report.mjs VITEST_JSON SKIP_LOG
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";

const [jsonPath, logPath] = process.argv.slice(2);
const report = JSON.parse(readFileSync(jsonPath, "utf8"));
const recorded = new Map();
if (existsSync(logPath)) {
  for (const line of readFileSync(logPath, "utf8").split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line);
    const list = recorded.get(r.file) ?? [];
    if (!list.some((x) => x.reason === r.reason)) list.push(r);
    recorded.set(r.file, list);
  }
}

const SKIPPED = new Set(["pending", "skipped", "todo"]);
let bad = 0;
let total = 0;
for (const file of report.testResults ?? []) {
  const rel = relative(process.cwd(), file.name);
  const skipped = (file.assertionResults ?? []).filter((t) => SKIPPED.has(t.status));
  if (skipped.length === 0) continue;
  total += skipped.length;
  const reasons = recorded.get(rel) ?? [];
  const allowed = reasons.length > 0 && reasons.every((r) => r.cause !== "setup");
  if (!allowed) bad += skipped.length;
  const why =
    reasons.length === 0
      ? "NO REASON RECORDED (use test/fixtures/skip.ts)"
      : reasons.map((r) => `${r.reason} [${r.cause}]`).join("; ");
  console.log(`skipped ${skipped.length} in ${rel}: ${why}${allowed ? "" : "  <- not allowed"}`);
  for (const t of skipped) console.log(`    - ${t.fullName}`);
}
if (total === 0) console.log("skipped: none");
if (bad > 0) {
  console.log(
    `${bad} test(s) skipped for something the project installs or builds itself, or without a reason: failing the run`,
  );
  process.exit(1);
}
