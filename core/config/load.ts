// loadConfig: raw values (from a Pulumi stack or a chatmail.ini) to a checked RelayConfig. This is the one
// place where input is rejected; everything downstream assumes a valid config.
import { ConfigError, type RawValue } from "./option";
import { OPTIONS, type OptionName, type RelayConfig } from "./options";
import { checkRules } from "./rules";

export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

/**
 * Checks every raw value and applies defaults. Unknown names are an error (a typo must not be ignored), and all
 * problems are reported together so an operator fixes them in one go.
 */
export function loadConfig(raw: Readonly<Record<string, RawValue>>): RelayConfig {
  const problems: string[] = [];
  for (const name of Object.keys(raw).sort()) {
    if (!(name in OPTIONS)) problems.push(`${name}: unknown option; see the option list in README.md`);
  }
  const values: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const option = OPTIONS[name];
    const value = raw[name];
    // An option with no default is unset when its value is empty: Pulumi.yaml declares "" (or []) as the
    // default of such options, so that a stack may leave them out (see pulumiYaml.ts).
    const unset = value === undefined || (option.default === undefined && isEmpty(value));
    try {
      values[name] = unset ? option.default : option.parse(value, name);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err.message);
    }
  }
  if (values.mailDomain === undefined && !problems.some((p) => p.startsWith("mailDomain:"))) {
    problems.push("mailDomain: required; set it to the relay's domain, like chat.example.org");
  }
  if (problems.length === 0) {
    values.mailboxesDir ??= `/home/vmail/mail/${values.mailDomain}`;
    problems.push(...checkRules(values as RelayConfig));
  }
  if (problems.length > 0) throw new ConfigError(`invalid relay configuration:\n  ${problems.join("\n  ")}`);
  return Object.freeze(values) as RelayConfig;
}

const isEmpty = (v: Exclude<RawValue, undefined>) =>
  (typeof v === "string" && v.trim() === "") || (Array.isArray(v) && v.length === 0);

/** Size strings like "500M", "2G", "256" (megabytes) in megabytes, as chatmail.ini has always read them. */
export function parseSizeMb(text: string): number {
  const value = text.trim().toUpperCase().replace(/B$/, "").trim();
  if (value.endsWith("G")) return Number(value.slice(0, -1)) * 1024;
  if (value.endsWith("M")) return Number(value.slice(0, -1));
  return Number(value);
}

/** The iroh relay URL clients are told about: an external one, or the relay's own. */
export function irohRelayUrl(config: Pick<RelayConfig, "irohRelay" | "mailDomain">): string {
  return config.irohRelay ?? `https://${config.mailDomain}`;
}

/** Whether this relay runs its own iroh-relay service. */
export function runsOwnIrohRelay(config: RelayConfig): boolean {
  return config.irohRelay === undefined;
}
