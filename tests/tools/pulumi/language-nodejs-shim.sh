#!/usr/bin/env bash
# Installed by tests/tools/pulumi/build.sh as bin/pulumi-language-nodejs: the only language host the proxy serves
# is the one from sdk/v3 3.68.0 (bin/pulumi-language-nodejs-host). That host reads the runtime options as flags,
# while today's CLI starts it with the engine address alone and sends the options over gRPC, which the old host
# ignores. This shim reads Pulumi.yaml's runtime options (typescript, tsconfig, nodeargs) and passes them as the
# flags the old host knows, so `typescript: false` + `nodeargs: "--import tsx"` behave as with a matching host.
set -euo pipefail
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")

flags=()
# The CLI starts language hosts in the project root, next to Pulumi.yaml.
for project_file in Pulumi.yaml Pulumi.yml; do
  [[ -f $project_file ]] || continue
  # The project's own `yaml` package parses the file; one flag per output line.
  if options=$(node -e '
    const yaml = require(require.resolve("yaml", { paths: [process.cwd()] }));
    const project = yaml.parse(require("fs").readFileSync(process.argv[1], "utf8")) || {};
    const options = (typeof project.runtime === "object" && project.runtime && project.runtime.options) || {};
    if (options.typescript !== undefined) console.log(`-typescript=${options.typescript === true || options.typescript === "true"}`);
    if (typeof options.tsconfig === "string") console.log(`-tsconfig=${options.tsconfig}`);
    if (typeof options.nodeargs === "string") console.log(`-nodeargs=${options.nodeargs}`);
  ' "$project_file" 2>/dev/null); then
    [[ -z $options ]] || mapfile -t flags <<<"$options"
  else
    echo "pulumi-language-nodejs shim: could not read runtime options from $project_file; using the defaults" >&2
  fi
  break
done

exec "$here/pulumi-language-nodejs-host" "${flags[@]}" "$@"
