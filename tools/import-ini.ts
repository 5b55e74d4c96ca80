// `npm run import-ini -- chatmail.ini`: moving from cmdeploy. Prints the `pulumi config set` commands that give
// a stack the same settings as an existing chatmail.ini (only values that differ from our defaults).
import { readConfigFile } from "../components/configFile";
import { ConfigError, OPTIONS, OPTION_NAMES, parseChatmailIni, type RelayConfig } from "../core/config";

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The options of a config read from chatmail.ini that differ from our defaults: what a stack must set to run the
 * same relay (the mailboxes folder cmdeploy derives from the domain is our default too).
 */
export function importedOptions(config: RelayConfig): Array<[keyof RelayConfig & string, unknown]> {
  return OPTION_NAMES.flatMap((name): Array<[typeof name, unknown]> => {
    const value = config[name];
    if (value === undefined || JSON.stringify(value) === JSON.stringify(OPTIONS[name].default)) return [];
    if (name === "mailboxesDir" && value === `/home/vmail/mail/${config.mailDomain}`) return [];
    return [[name, value]];
  });
}

function main(): number {
  const [path] = process.argv.slice(2);
  if (!path || path === "--help") {
    process.stdout.write("Usage: npm run import-ini -- PATH/TO/chatmail.ini\n");
    return path ? 0 : 2;
  }
  let parsed;
  try {
    parsed = parseChatmailIni(readConfigFile(path, "a chatmail.ini"));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`import-ini: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const { config, unknownKeys } = parsed;
  const lines: string[] = [];
  for (const [name, value] of importedOptions(config)) {
    if (OPTIONS[name].secret) {
      // Secrets are not echoed: the operator copies them from the ini into a secret config value.
      const count = Array.isArray(value) ? value.length : 1;
      lines.push(`# ${name}: ${count} secret value(s) in ${path}; set each without echoing it, e.g.`);
      lines.push(`#   pulumi config set --secret --path '${name}[0]'   (then paste the value at the prompt)`);
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => lines.push(`pulumi config set --path ${q(`${name}[${i}]`)} ${q(item)}`));
    } else {
      lines.push(`pulumi config set ${name} ${q(String(value))}`);
    }
  }
  process.stdout.write(lines.join("\n") + "\n");
  for (const key of unknownKeys)
    process.stderr.write(`note: ${key} has no effect here and was not imported\n`);
  return 0;
}

if (require.main === module) process.exitCode = main();
