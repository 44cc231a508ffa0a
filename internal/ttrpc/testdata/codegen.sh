#!/bin/sh
# Regenerates the test service's TypeScript (and formats it as the repository's biome does).
set -eu
cd "$(dirname "$0")"
rm -rf gen
../../../node_modules/.bin/buf generate
../../../node_modules/.bin/biome format --write gen >/dev/null
