// Writes Pulumi.yaml's config schema and README.md's option reference from the options table
// (core/config/options.ts). tests/config/pulumiYaml.test.ts fails when either is out of date.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pulumiYaml, withOptionsReference } from "../core/config/pulumiYaml";

const root = join(__dirname, "..");
writeFileSync(join(root, "Pulumi.yaml"), pulumiYaml());
const readme = join(root, "README.md");
writeFileSync(readme, withOptionsReference(readFileSync(readme, "utf8")));
