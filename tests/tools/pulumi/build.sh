#!/usr/bin/env bash
# Builds the real Pulumi tools from Go modules, at the versions the npm packages pin:
#   pulumi                     CLI, github.com/pulumi/pulumi/pkg/v3 at the @pulumi/pulumi version
#   pulumi-language-nodejs     Node.js language host, same release
#   pulumi-resource-command    command provider, at the plugin version @pulumi/command declares
# The machines reach the Go module proxy but no download site, so the prebuilt releases are out of reach.
#
# Usage: tools/pulumi/build.sh [--print-bin-dir] [TOOL...]      (TOOL: pulumi, language-nodejs, command)
# Prints the bin directory on its last line; put it first on PATH.
#
# Environment (all optional):
#   CHATMAIL_TOOLS_CACHE    cache root, default ${XDG_CACHE_HOME:-$HOME/.cache}/chatmail-relay
#   PULUMI_TOOLS_BIN_DIR    where the binaries go, default $CHATMAIL_TOOLS_CACHE/pulumi-<version>/bin
#   PULUMI_VERSION          default: package.json's @pulumi/pulumi
#   PULUMI_COMMAND_VERSION  default: the "pulumi.version" of node_modules/@pulumi/command/package.json
#   BUILD_NICE              nice level for go, default 10
#
# Idempotent: a binary whose stamp names the same module@version is not rebuilt. Module and build caches
# live under the cache root, so a rebuild after a version bump only compiles what changed.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

print_bin_dir_only=false
wanted=()
for arg in "$@"; do
  case "$arg" in
    --print-bin-dir) print_bin_dir_only=true ;;
    pulumi | language-nodejs | command) wanted+=("$arg") ;;
    *)
      echo "build.sh: unknown argument '$arg' (allowed: --print-bin-dir, pulumi, language-nodejs, command)" >&2
      exit 2
      ;;
  esac
done
[[ ${#wanted[@]} -gt 0 ]] || wanted=(pulumi language-nodejs command)

# One place reads the pins, so the Go builds cannot drift from what npm installed.
json_field() { # file, JS expression on `p`
  node -e 'const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = eval(process.argv[2]); if (!v) process.exit(1); console.log(v)' "$1" "$2"
}
pulumi_version=${PULUMI_VERSION:-$(json_field "$repo_root/package.json" 'p.dependencies["@pulumi/pulumi"]')}
command_pkg_json=$repo_root/node_modules/@pulumi/command/package.json
if [[ -z ${PULUMI_COMMAND_VERSION:-} ]]; then
  if [[ -f $command_pkg_json ]]; then
    PULUMI_COMMAND_VERSION=$(json_field "$command_pkg_json" 'p.pulumi && p.pulumi.version')
  else
    # Without node_modules, the npm pin is the best guess: @pulumi/command releases match their plugin.
    PULUMI_COMMAND_VERSION=$(json_field "$repo_root/package.json" 'p.dependencies["@pulumi/command"]')
  fi
fi
command_version=$PULUMI_COMMAND_VERSION
pulumi_version=${pulumi_version#v}
command_version=${command_version#v}

cache_root=${CHATMAIL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chatmail-relay}
tools_dir=$cache_root/pulumi-$pulumi_version
bin_dir=${PULUMI_TOOLS_BIN_DIR:-$tools_dir/bin}

if $print_bin_dir_only; then
  echo "$bin_dir"
  exit 0
fi

# Caches shared by every version: a second run, or the next version, reuses downloads and compiled packages.
export GOMODCACHE=$cache_root/go/mod
export GOCACHE=$cache_root/go/build
export GOPATH=$cache_root/go/path
# Two shared cores: one package at a time, and static binaries so no C toolchain is involved.
export GOFLAGS="-p=1 -mod=mod"
export CGO_ENABLED=0
# Build with the Go on this machine; the proxy may serve no other toolchain.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
nice_level=${BUILD_NICE:-10}
mkdir -p "$bin_dir" "$GOMODCACHE" "$GOCACHE" "$GOPATH"

log() { echo "[pulumi-build] $*" >&2; }

# go.mod of a published module version, fetched through the proxy. On failure, prints the proxy's answer.
upstream_gomod() { # module@version
  local out
  if ! out=$(nice -n "$nice_level" go mod download -json "$1" 2>&1); then
    log "$1 is not available: $(sed -n 's/^[[:space:]]*"Error": "\(.*\)"$/\1/p' <<<"$out" | head -n 1)"
    log "(go mod download said: $(tr '\n' ' ' <<<"$out" | cut -c1-600))"
    return 1
  fi
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$out"
}

# The `replace` directives of a go.mod, one per line as "old => new", block form flattened.
replace_lines() { # go.mod path
  awk '
    /^replace[[:space:]]*\($/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    inblock { sub(/\/\/.*/, ""); if ($0 ~ /=>/) print; next }
    /^replace[[:space:]]/ { sub(/^replace[[:space:]]+/, ""); sub(/\/\/.*/, ""); print }
  ' "$1"
}

# Builds one main package from a generated wrapper module.
# A module with `replace` lines cannot be `go install`ed, because replaces only count in the main module.
# The wrapper requires the module and repeats its replaces. A replace that points at a sibling directory of
# the same repository (../sdk) becomes a replace by that module's published version of the same release:
# a monorepo release tags all its modules at once, so that module version is exactly that directory.
build_go_tool() { # binary module version package ldflags
  local binary=$1 module=$2 version=$3 package=$4 ldflags=$5
  local stamp="$module@$version $package"
  local target=$bin_dir/$binary
  if [[ -x $target && -f $target.stamp && $(cat "$target.stamp") == "$stamp" ]]; then
    log "$binary: up to date ($module@$version)"
    return 0
  fi
  local started=$SECONDS
  log "$binary: building $package from $module@$version"
  local gomod
  gomod=$(upstream_gomod "$module@$version") || return 1
  local go_line
  go_line=$(awk '$1 == "go" { print $2; exit }' "$gomod")
  local wrapper=$cache_root/wrappers/$binary-$version
  rm -rf "$wrapper"
  mkdir -p "$wrapper"
  {
    echo "// Generated by tools/pulumi/build.sh: builds $package at $version."
    echo "module chatmail-relay.invalid/tools/$binary-wrapper"
    echo
    echo "go ${go_line:-1.22}"
    echo
    echo "require $module $version"
    echo
    local line old new
    while IFS= read -r line; do
      [[ -n $line ]] || continue
      old=$(awk '{ print $1 }' <<<"${line%%=>*}")
      new=$(awk '{ print $1 }' <<<"${line#*=>}")
      if [[ $new == ./* || $new == ../* ]]; then
        echo "replace $old => $old $version // upstream: $old => $new"
      else
        echo "replace $line"
      fi
    done < <(replace_lines "$gomod")
  } >"$wrapper/go.mod"
  # A build-tagged import makes `go mod tidy` resolve the program's whole dependency graph.
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$wrapper/tools.go"
  (cd "$wrapper" && nice -n "$nice_level" go mod tidy) || return 1
  (cd "$wrapper" && go list -m all) >"$wrapper/modules.txt"
  rm -f "$target.stamp"
  (cd "$wrapper" && nice -n "$nice_level" go build -trimpath -ldflags "$ldflags" -o "$target.tmp" "$package") || return 1
  mv -f "$target.tmp" "$target"
  echo "$stamp" >"$target.stamp"
  log "$binary: built in $((SECONDS - started)) s -> $target"
}

version_ldflags() { # version
  echo "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$1"
}

# The language host of the same release lives in its own module, which the proxy here does not serve (403).
# Releases up to 3.68.0 still carried it inside github.com/pulumi/pulumi/sdk/v3, and the proxy serves that one.
# That host takes its runtime options as flags, while today's CLI starts it with the engine address alone, so
# a shim (language-nodejs-shim.sh) reads them from Pulumi.yaml and passes them on. See docs/pulumi-from-source.md.
langhost_fallback_sdk=${PULUMI_LANGHOST_FALLBACK_SDK:-3.68.0}
build_language_nodejs() {
  if build_go_tool pulumi-language-nodejs github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 \
    "v$pulumi_version" github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 \
    "$(version_ldflags "v$pulumi_version")"; then
    rm -f "$bin_dir/pulumi-language-nodejs-host" "$bin_dir/pulumi-language-nodejs-host.stamp"
    return 0
  fi
  log "pulumi-language-nodejs: falling back to the host inside github.com/pulumi/pulumi/sdk/v3@v$langhost_fallback_sdk"
  build_go_tool pulumi-language-nodejs-host github.com/pulumi/pulumi/sdk/v3 "v$langhost_fallback_sdk" \
    github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
    "$(version_ldflags "v$langhost_fallback_sdk")" || return 1
  rm -f "$bin_dir/pulumi-language-nodejs.stamp"
  install -m 0755 "$repo_root/tools/pulumi/language-nodejs-shim.sh" "$bin_dir/pulumi-language-nodejs"
}

# Dynamic providers (pulumi.dynamic.Resource) run through a plugin that is a two-line shell script shipped in
# the SDK module's nodejs/dist; the CLI release archive carries it next to the language host.
install_dynamic_provider_plugin() {
  local dir
  dir=$(nice -n "$nice_level" go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$pulumi_version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  install -m 0755 "$dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$bin_dir/pulumi-resource-pulumi-nodejs"
}

failed=()
for tool in "${wanted[@]}"; do
  case "$tool" in
    pulumi)
      build_go_tool pulumi github.com/pulumi/pulumi/pkg/v3 "v$pulumi_version" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$(version_ldflags "v$pulumi_version")" || failed+=(pulumi)
      ;;
    language-nodejs)
      { build_language_nodejs && install_dynamic_provider_plugin; } || failed+=(pulumi-language-nodejs)
      ;;
    command)
      # The plugin version is what @pulumi/command asks the engine for; the module lives in provider/.
      build_go_tool pulumi-resource-command github.com/pulumi/pulumi-command/provider "v$command_version" \
        github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command \
        "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=v$command_version" ||
        failed+=(pulumi-resource-command)
      ;;
  esac
done

echo "$bin_dir"
if [[ ${#failed[@]} -gt 0 ]]; then
  log "not built: ${failed[*]} (see the messages above)"
  exit 1
fi
