#!/usr/bin/env bash
# The README's test command runs this (via `npm test`): host setup, builds, static checks, then every
# test suite against real components. Each step prints its wall time so slow steps are visible in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local name=$1
  shift
  local t0=$SECONDS rc=0
  echo "==> ${name}"
  # Capture the status explicitly: errexit is suspended inside a function called from `||`.
  "$@" || rc=$?
  echo "<== ${name} ($((SECONDS - t0)) s, exit ${rc})"
  return "$rc"
}

report_totals() {
  # vitest's JSON report → one plain closing line that any CI log reader understands.
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  ' "$1"
}

if [[ $(id -u) -ne 0 ]]; then
  echo "npm test needs root: it installs host packages and boots VMs with TAP networking (run it with sudo)" >&2
  exit 1
fi

step "build" npm run --silent build
step "setup (host dependencies)" node dist/beetroot.mjs setup
step "assets (kernel, guest image)" node dist/beetroot.mjs build all
step "lint + format check" npx biome ci .
step "typecheck" npx tsc -p tsconfig.json --noEmit
step "codegen up to date" node scripts/codegen-check.mjs

mkdir -p test/.tmp
rm -f test/.tmp/vitest.json test/.tmp/skips.jsonl
status=0
export BEETROOT_SKIP_LOG=$PWD/test/.tmp/skips.jsonl
step "tests" npx vitest run --reporter=default --reporter=json --outputFile=test/.tmp/vitest.json || status=$?
if [[ -f test/.tmp/vitest.json ]]; then
  report_totals test/.tmp/vitest.json
  node scripts/skip-report.mjs test/.tmp/vitest.json test/.tmp/skips.jsonl || status=1
else
  status=1
fi
exit "$status"
