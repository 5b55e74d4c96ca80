#!/usr/bin/env bash
# Builds the test-only stand-in of pulumi-resource-command (README.md) as OUT_DIR/pulumi-resource-command,
# static, trimmed and stripped, and records a hash of its sources in OUT_DIR/pulumi-resource-command.stamp;
# when the stamp matches the sources and the binary exists, it builds nothing.
#
# Usage: tests/tools/command-provider/build.sh OUT_DIR
# Environment: CHATMAIL_TOOLS_CACHE (default ~/.cache/chatmail-relay) holds the Go module and build caches.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
bin=$out/pulumi-resource-command
stamp=$bin.stamp

# sha256sum lists names and contents, so a renamed, added or removed file changes the hash too.
hash=$(cd "$src" && find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [[ -x $bin && -f $stamp && $(<"$stamp") == "$hash" ]]; then
  echo "pulumi-resource-command (test stand-in): up to date in $out"
  exit 0
fi

cache=${CHATMAIL_TOOLS_CACHE:-$HOME/.cache/chatmail-relay}
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
# Build next to the target and rename, so that an engine starting meanwhile never runs a half-written binary.
tmp=$(mktemp -d "$out/.pulumi-resource-command.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$src" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp/pulumi-resource-command" .)
mv -f "$tmp/pulumi-resource-command" "$bin"
echo "$hash" >"$stamp"
echo "pulumi-resource-command (test stand-in): built $bin"
