// The daemons' configuration, read from the server's chatmail.ini (core/plan writes it from the options marked
// `daemons: true`). The parsing rules live in core/config/daemon.ts; this module reads the file and is the only
// way the daemons reach the config layer.
import { readFileSync } from "node:fs";
import { parseDaemonConfig, type DaemonConfig } from "../core/config/daemon";

export {
  irohRelayUrl,
  parseDaemonConfig,
  parseSizeMb,
  type DaemonConfig,
  type ParsedDaemonConfig,
} from "../core/config/daemon";

/** Reads chatmail.ini at `path`; keys that set nothing are reported through `warn` and otherwise ignored. */
export function readDaemonConfig(path: string, warn: (message: string) => void = () => {}): DaemonConfig {
  const { config, unknownKeys } = parseDaemonConfig(readFileSync(path, "utf8"));
  if (unknownKeys.length > 0) warn(`${path}: ignoring unknown keys ${unknownKeys.join(", ")}`);
  return config;
}
