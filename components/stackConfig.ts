// Reads the stack's configuration (Pulumi.<stack>.yaml) into a checked RelayConfig. Values are read raw and
// checked by loadConfig, so `pulumi preview` fails on bad config before any server is touched.
import * as pulumi from "@pulumi/pulumi";
import { checkDeployRules, ConfigError, loadConfig, OPTION_NAMES, type RelayConfig } from "./config";
import { PROJECT_NAME } from "./config/pulumiYaml";

export function readStackConfig(): RelayConfig {
  const raw: Record<string, string> = {};
  for (const name of OPTION_NAMES) {
    // runtime.getConfig returns the decrypted text of secrets too; secrecy is restored where values are used
    // (Relay marks secret files, invite links and the SSH key as secrets).
    const value = pulumi.runtime.getConfig(`${PROJECT_NAME}:${name}`);
    if (value !== undefined) raw[name] = value;
  }
  const config = loadConfig(raw);
  const problems = checkDeployRules(config);
  if (problems.length > 0) throw new ConfigError(`invalid relay configuration:\n  ${problems.join("\n  ")}`);
  return config;
}
