#!/usr/bin/env bash
# Builds the iroh-relay server from its release on the crate registry and packages it like the upstream release archive
# (iroh-relay-v<version>-<target>.tar.gz, a gzipped tar holding ./iroh-relay), so a local web server in the
# testbed can stand in for the download URL that irohRelayDownloadUrl names.
#
# Usage: tests/tools/iroh/build.sh            prints "archive <path>", "binary <path>" and both sha256 sums
# Environment (all optional):
#   CHATMAIL_TOOLS_CACHE   cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/chatmail-relay
#   IROH_RELAY_VERSION     default: the version in irohRelayDownloadUrl's default (core/config/options.ts)
#   IROH_RELAY_TARGET      default x86_64-unknown-linux-musl (static, like upstream); falls back to
#                          x86_64-unknown-linux-gnu when the musl standard library (rustup target) or
#                          musl-gcc (Debian musl-tools) is missing. A glibc build from a newer distribution
#                          may not start on Debian 12, so keep musl for the testbed.
#   BUILD_NICE / BUILD_JOBS  nice level (10) and cargo jobs (1): the cores are shared
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
log() { echo "[iroh-build] $*" >&2; }

version=${IROH_RELAY_VERSION:-}
if [[ -z $version ]]; then
  # The default download URL is the project's pin; read it rather than repeat the number here.
  version=$(sed -n 's|.*/releases/download/v\([0-9][0-9.]*\)/iroh-relay-.*|\1|p' \
    "$repo_root/core/config/options.ts" | head -n 1)
  [[ -n $version ]] || {
    log "IROH_RELAY_VERSION is unset and no iroh-relay release URL was found in core/config/options.ts"
    exit 2
  }
fi
version=${version#v}

cache_root=${CHATMAIL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatmail-relay}
export CARGO_HOME=$cache_root/cargo
target_dir=$cache_root/cargo-target
nice_level=${BUILD_NICE:-10}
jobs=${BUILD_JOBS:-1}

target=${IROH_RELAY_TARGET:-x86_64-unknown-linux-musl}
if [[ $target == *-musl ]] && ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  if ! rustup target add "$target" >&2; then
    log "the $target standard library could not be installed; building for x86_64-unknown-linux-gnu instead"
    target=x86_64-unknown-linux-gnu
  fi
fi

if [[ $target == *-musl ]]; then
  # ring (TLS) compiles C and assembly; for a musl target it needs a musl C compiler (Debian: musl-tools).
  if command -v musl-gcc >/dev/null; then
    export "CC_${target//-/_}=${CC_x86_64_unknown_linux_musl:-musl-gcc}"
  else
    log "musl-gcc is missing (Debian package musl-tools); building for x86_64-unknown-linux-gnu instead"
    target=x86_64-unknown-linux-gnu
  fi
fi

out_dir=$cache_root/iroh-relay-$version/$target
archive=$out_dir/iroh-relay-v$version-$target.tar.gz
binary=$out_dir/iroh-relay

if [[ -x $binary && -f $archive ]]; then
  log "iroh-relay $version ($target): up to date"
else
  started=$SECONDS
  mkdir -p "$CARGO_HOME" "$target_dir" "$out_dir"
  log "building iroh-relay $version for $target (cargo -j $jobs)"
  # --locked: the crate ships its Cargo.lock, so the dependency versions are the release's own.
  # The binary needs the `server` feature (its [[bin]] has required-features = ["server"]).
  nice -n "$nice_level" cargo install iroh-relay --version "=$version" --locked \
    --features server --bin iroh-relay --target "$target" -j "$jobs" \
    --root "$out_dir/install" --target-dir "$target_dir" >&2
  install -m 0755 "$out_dir/install/bin/iroh-relay" "$binary.tmp"
  mv -f "$binary.tmp" "$binary"
  # Same layout as the upstream archive: one member, ./iroh-relay. Fixed owner, mode and time, and gzip
  # without a name or timestamp, so packaging the same binary twice gives the same archive bytes.
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  install -m 0755 "$binary" "$stage/iroh-relay"
  tar -C "$stage" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - ./iroh-relay | gzip -n -9 >"$archive.tmp"
  mv -f "$archive.tmp" "$archive"
  log "built in $((SECONDS - started)) s"
fi

binary_sha=$(sha256sum "$binary" | cut -d' ' -f1)
archive_sha=$(sha256sum "$archive" | cut -d' ' -f1)
printf '%s  %s\n' "$binary_sha" iroh-relay "$archive_sha" "$(basename "$archive")" >"$out_dir/SHA256SUMS"
echo "version $version"
echo "target $target"
echo "archive $archive"
echo "archive_sha256 $archive_sha"
echo "binary $binary"
echo "binary_sha256 $binary_sha"
