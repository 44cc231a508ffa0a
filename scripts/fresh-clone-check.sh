#!/usr/bin/env bash
# Runs the README's test command on a fresh clone of this checkout's committed main, as CI does:
# nothing of the working tree (uncommitted changes, node_modules, dist/, test/.tmp) takes part.
#
#   scripts/fresh-clone-check.sh [--cold] [--keep] [REF]
#
# --cold  uses an empty cache dir (BEETROOT_CACHE_DIR) as a fresh machine has: the kernel, the guest
#         image and every private prefix are built or fetched again (~20 min more). System packages
#         that an earlier `beetroot setup` installed with apt stay installed; only a new machine
#         shows those missing.
# --keep  leaves the clone (and the cold cache) in place for inspection.
# REF     what to clone (default: main).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cold=0 keep=0 ref=main
for a in "$@"; do
  case $a in
    --cold) cold=1 ;;
    --keep) keep=1 ;;
    -h | --help)
      sed -n '2,12p' "$0"
      exit 0
      ;;
    -*)
      echo "unknown option $a" >&2
      exit 2
      ;;
    *) ref=$a ;;
  esac
done

work=$(mktemp -d /tmp/beetroot-fresh-XXXXXX)
cleanup() { if [[ $keep -eq 0 ]]; then rm -rf "$work"; else echo "kept $work"; fi; }
trap cleanup EXIT

git clone --quiet --branch "$ref" --single-branch "file://$repo" "$work/clone"
echo "fresh clone of $ref at $(git -C "$work/clone" rev-parse --short HEAD) in $work/clone"
if [[ $cold -eq 1 ]]; then
  export BEETROOT_CACHE_DIR=$work/cache
  echo "cold cache: $BEETROOT_CACHE_DIR"
fi
cd "$work/clone"
t0=$SECONDS
status=0
.ci/run || status=$?
echo "fresh-clone check: .ci/run exit ${status} after $((SECONDS - t0)) s"
exit "$status"
