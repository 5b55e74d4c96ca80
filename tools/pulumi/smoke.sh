#!/usr/bin/env bash
# Proves that the tools from tools/pulumi/build.sh deploy with the real engine, offline: a local file backend,
# a passphrase from the environment, and a throwaway TypeScript program with one resource that runs `echo hi`.
# `pulumi up` must create it and a second `pulumi up --expect-no-changes` must change nothing.
#
# Usage: tools/pulumi/smoke.sh [command|dynamic]
#   command  (default) a command:local:Command, served by pulumi-resource-command found on PATH
#   dynamic  a pulumi.dynamic.Resource, served by the Node SDK itself (no provider binary needed)
# Exits non-zero on the first step that fails. Leaves nothing behind unless KEEP_SMOKE_DIR=1.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kind=${1:-command}
case "$kind" in
  command | dynamic) ;;
  *)
    echo "smoke.sh: resource kind '$kind' is not known (allowed: command, dynamic)" >&2
    exit 2
    ;;
esac

bin_dir=$("$repo_root/tools/pulumi/build.sh" --print-bin-dir)
for tool in pulumi pulumi-language-nodejs; do
  [[ -x $bin_dir/$tool ]] || {
    echo "smoke.sh: $bin_dir/$tool is missing; run tools/pulumi/build.sh first" >&2
    exit 1
  }
done

work=$(mktemp -d /tmp/pulumi-smoke.XXXXXX)
[[ ${KEEP_SMOKE_DIR:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT

export PATH="$bin_dir:$PATH"
export PULUMI_HOME=$work/pulumi-home
export PULUMI_CONFIG_PASSPHRASE=smoke-test-only
# Offline: no update check, no plugin downloads; plugins come from PATH ("ambient" plugins).
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
unset PULUMI_IGNORE_AMBIENT_PLUGINS
export PULUMI_SKIP_CONFIRMATIONS=true

program=$work/program
mkdir -p "$program/node_modules/@pulumi" "$work/state"
# Only the packages this program imports, linked from the project's install, so the language host does not
# report every provider package of the project as a plugin to fetch.
mkdir -p "$program/node_modules/@types"
for pkg in @pulumi/pulumi @pulumi/command @types/node typescript tsx; do
  ln -s "$repo_root/node_modules/$pkg" "$program/node_modules/$pkg"
done

cat >"$program/Pulumi.yaml" <<'EOF'
name: tools-smoke
description: Throwaway program that proves the locally built Pulumi tools work
runtime:
  name: nodejs
  options:
    typescript: false
    nodeargs: "--import tsx"
main: index.ts
EOF
cat >"$program/package.json" <<'EOF'
{ "name": "tools-smoke", "private": true, "type": "commonjs",
  "dependencies": { "@pulumi/pulumi": "*", "@pulumi/command": "*" } }
EOF
cat >"$program/tsconfig.json" <<'EOF'
{ "compilerOptions": { "strict": true, "target": "es2022", "module": "commonjs", "moduleResolution": "bundler",
  "types": ["node"], "skipLibCheck": true }, "include": ["index.ts"] }
EOF
if [[ $kind == command ]]; then
  cat >"$program/index.ts" <<'EOF'
import * as command from "@pulumi/command";

const hi = new command.local.Command("hi", { create: "echo hi" });
export const stdout = hi.stdout;
EOF
else
  cat >"$program/index.ts" <<'EOF'
import * as pulumi from "@pulumi/pulumi";

// Runs a shell command at create time, like command:local:Command, but served by the SDK's dynamic provider.
const echoProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { create: string }) {
    const stdout = require("child_process").execFileSync("sh", ["-c", inputs.create]).toString().trim();
    return { id: "hi", outs: { create: inputs.create, stdout } };
  },
};

class Echo extends pulumi.dynamic.Resource {
  declare readonly stdout: pulumi.Output<string>;
  constructor(name: string, create: string) {
    super(echoProvider, name, { create, stdout: undefined }, {});
  }
}

export const stdout = new Echo("hi", "echo hi").stdout;
EOF
fi

step() { # title, command...
  local title=$1
  shift
  local started=$SECONDS
  echo "== $title: $*"
  "$@"
  echo "== $title: ok in $((SECONDS - started)) s"
}

cd "$program"
step version pulumi version
step login pulumi login "file://$work/state"
step stack-init pulumi stack init smoke --secrets-provider passphrase
step up pulumi up --yes --skip-preview
[[ $(pulumi stack output stdout) == hi ]] || {
  echo "smoke.sh: stack output stdout is '$(pulumi stack output stdout)', expected 'hi'" >&2
  exit 1
}
step up-again pulumi up --yes --expect-no-changes
step preview-diff pulumi preview --diff --expect-no-changes
if [[ -d $PULUMI_HOME/plugins ]] && [[ -n $(ls -A "$PULUMI_HOME/plugins") ]]; then
  echo "smoke.sh: plugins were installed into PULUMI_HOME ($(ls "$PULUMI_HOME/plugins")); expected none" >&2
  exit 1
fi
step destroy pulumi destroy --yes
echo "smoke.sh: $kind resource deployed, re-deployed without changes, and destroyed"
