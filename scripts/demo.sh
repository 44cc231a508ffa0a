#!/usr/bin/env bash
# The README's main job: install host dependencies, build the shim and the guest assets, then run a
# container through containerd in a beetroot micro-VM (`beetroot demo` starts a private containerd when
# none is configured, imports a locally built busybox image and runs it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
  echo "the demo needs root: it installs host packages and starts containerd and QEMU (run it with sudo)" >&2
  exit 1
fi

npm run --silent build
node dist/beetroot.mjs setup
node dist/beetroot.mjs build all
exec node dist/beetroot.mjs demo "$@"
