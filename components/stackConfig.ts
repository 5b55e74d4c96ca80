// Reads the stack's configuration (Pulumi.<stack>.yaml) into a checked RelayConfig. Values are read raw and
// checked by loadConfig, so `pulumi preview` fails on bad config before any server is touched.
import * as pulumi from "@pulumi/pulumi";
import {
  checkDeployRules,
  ConfigError,
  loadConfig,
  OPTION_NAMES,
  OPTIONS,
  type RelayConfig,
} from "../core/config";
import { PROJECT_NAME, schemaSecret } from "../core/config/pulumiYaml";

// Exported by the SDK's runtime at 3.248.0, but missing from its typings.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as {
  isConfigSecret(key: string): boolean;
};

export function readStackConfig(): RelayConfig {
  const raw: Record<string, string> = {};
  const problems: string[] = [];
  for (const name of OPTION_NAMES) {
    // runtime.getConfig returns the decrypted text of secrets too; secrecy is restored where values are used
    // (Relay marks secret files, invite links and the SSH key as secrets).
    const key = `${PROJECT_NAME}:${name}`;
    const value = pulumi.runtime.getConfig(key);
    if (value === undefined) continue;
    raw[name] = value;
    // Pulumi.yaml cannot mark an optional secret (see schemaSecret), so a plain value is refused here.
    if (
      OPTIONS[name].secret &&
      !schemaSecret(OPTIONS[name]) &&
      !isEmptyValue(value) &&
      !isConfigSecret(key)
    ) {
      problems.push(
        `${name}: must be encrypted; set it with \`pulumi config set --secret ${OPTIONS[name].schemaType === "array" ? `--path '${name}[0]'` : name}\``,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid relay configuration:\n  ${problems.join("\n  ")}`);
  const config = loadConfig(raw);
  problems.push(...checkDeployRules(config));
  if (problems.length > 0) throw new ConfigError(`invalid relay configuration:\n  ${problems.join("\n  ")}`);
  return config;
}

/** An unset value as the CLI hands it over: the empty text or list that Pulumi.yaml declares as default. */
const isEmptyValue = (v: string) => v.trim() === "" || v.trim() === "[]";
