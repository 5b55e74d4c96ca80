// Lets Node load the program's TypeScript: Pulumi.yaml starts the program with `--require` of this file. Each
// .ts file is transformed by esbuild (types stripped, no type check: `npm test` runs tsc) when it is first
// required. Unlike a general loader (tsx), it leaves the loading of every .js file alone, which takes half a
// second off each program run (docs/deploy-speed.md); `pulumi up` runs the program twice.
"use strict";
const { readFileSync } = require("node:fs");
const { transformSync } = require("esbuild");

require.extensions[".ts"] = (module, filename) => {
  const { code } = transformSync(readFileSync(filename, "utf8"), {
    loader: "ts",
    format: "cjs",
    target: "node20",
    sourcefile: filename,
    sourcemap: "inline",
  });
  module._compile(code, filename);
};
