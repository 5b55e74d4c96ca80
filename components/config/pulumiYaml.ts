// Pulumi.yaml's `config:` block, derived from the options table so the two can never disagree. The file is
// written by `npm run gen:pulumi-yaml`; tests/config/pulumiYaml.test.ts fails when it is out of date.
import { stringify } from "yaml";
import { OPTION_NAMES } from "./load";
import { OPTIONS } from "./options";

export const PROJECT_NAME = "chatmail-relay";

export function pulumiYaml(): string {
  const config: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const o = OPTIONS[name];
    const entry: Record<string, unknown> = { type: o.schemaType, description: o.description };
    if (o.schemaType === "array") entry.items = { type: "string" };
    if (o.secret) entry.secret = true;
    // Secrets get no default in the schema; a default would sit in the project file in plain text.
    if (o.default !== undefined && !o.secret) {
      entry.default = o.schemaType === "string" ? String(o.default) : o.default;
    }
    config[name] = entry;
  }
  const project = {
    name: PROJECT_NAME,
    description: "A chatmail relay (Delta Chat e-mail server) on one server, declared as one Pulumi stack.",
    runtime: { name: "nodejs", options: { packagemanager: "npm", typescript: false, nodeargs: "--import tsx" } },
    main: "index.ts",
    config,
  };
  return (
    "# Generated from components/config/options.ts by `npm run gen:pulumi-yaml`; edit the options table instead.\n" +
    stringify(project, { lineWidth: 0 })
  );
}
