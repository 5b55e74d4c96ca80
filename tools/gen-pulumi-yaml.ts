// Writes Pulumi.yaml from the options table (components/config/options.ts).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pulumiYaml } from "../components/config/pulumiYaml";

writeFileSync(join(__dirname, "..", "Pulumi.yaml"), pulumiYaml());
