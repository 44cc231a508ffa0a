#!/bin/sh
# Regenerates interop.pb.go from internal/ttrpc/testdata/proto with protoc-gen-go built offline from
# Debian's golang-google-protobuf-dev sources (the same runtime version the peer links against).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$tmp/cache" GOFLAGS= \
  go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
cat > "$tmp/buf.gen.yaml" <<YAML
version: v2
plugins:
  - local: $tmp/protoc-gen-go
    out: $tmp/out
    opt:
      - Mttrpctest/v1/interop.proto=beetroot/gopeer;main
      - paths=source_relative
inputs:
  - directory: $repo/internal/ttrpc/testdata/proto
YAML
"$repo/node_modules/.bin/buf" generate --template "$tmp/buf.gen.yaml"
cp "$tmp/out/ttrpctest/v1/interop.pb.go" "$here/interop.pb.go"
