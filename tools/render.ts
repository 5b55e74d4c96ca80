// `npm run render`: the whole relay offline. From a stack file (Pulumi.<stack>.yaml) or a cmdeploy chatmail.ini,
// write every server file of the plan under an output folder exactly as the server would have it, the DNS zone
// file and a plan summary. Needs no Pulumi CLI, no credentials and no network.
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadAssets } from "../components/assets";
import { readConfigFile } from "../components/configFile";
import { ConfigError, parseChatmailIni, type RelayConfig } from "../core/config";
import { parseStackFile } from "../core/config/pulumiYaml";
import { relayRecords, zoneFile } from "../core/dns";
import { alertRulesFile } from "../core/metrics";
import { planRelay, type Plan } from "../core/plan";

const HELP = `Usage: npm run render -- (--stack FILE | --ini FILE) [--out DIR]

Writes the relay's files as the server would have them, without touching any server.

  --stack FILE   a Pulumi stack file, like Pulumi.prod.yaml (encrypted secrets are left out)
  --ini FILE     a chatmail.ini from a relay deployed with cmdeploy
  --out DIR      output folder (default: out); it is emptied first
  --help         this text

Output:
  DIR/files/...     every file of the plan at its server path (secret files mode 0600)
  DIR/zone.txt      the DNS records in BIND format (addresses and DKIM are added after a deploy)
  DIR/plan.txt      the units in deploy order with their content hashes
  DIR/alerts.yml    Prometheus alerting rules for the relay (docs/alerts.md)
`;

const STACK_FILE = "a Pulumi stack file, like Pulumi.prod.yaml";
const INI_FILE = "a chatmail.ini";

function summary(plan: Plan): string {
  const rows = plan.steps.map((s) =>
    [
      s.phase.padEnd(10),
      s.secretHash ? "secret      " : s.hash.slice(0, 12),
      s.id,
      s.secret ? "(secret)" : "",
    ]
      .join("  ")
      .trimEnd(),
  );
  return `# ${plan.steps.length} units in deploy order: phase, content hash, unit\n${rows.join("\n")}\n`;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      ini: { type: "string" },
      out: { type: "string", default: "out" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.stack === !values.ini) {
    process.stderr.write(`render: give exactly one of --stack or --ini\n\n${HELP}`);
    return 2;
  }
  let config: RelayConfig;
  const notes: string[] = [];
  try {
    if (values.stack) {
      const read = parseStackFile(readConfigFile(values.stack, STACK_FILE), values.stack);
      config = read.config;
      notes.push(...read.notes);
    } else {
      const read = parseChatmailIni(readConfigFile(values.ini!, INI_FILE));
      config = read.config;
      for (const key of read.unknownKeys) notes.push(`${key}: not a setting of this relay; it has no effect`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`render: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const assets = loadAssets(config);
  const plan = planRelay(config, assets);
  const out = resolve(values.out!);
  rmSync(out, { recursive: true, force: true });
  let files = 0;
  for (const unit of plan.units) {
    if (unit.kind !== "file") continue;
    const path = join(out, "files", unit.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, unit.content);
    chmodSync(path, unit.secret ? 0o600 : 0o644);
    files++;
  }
  writeFileSync(join(out, "zone.txt"), zoneFile(config, relayRecords(config, {})));
  writeFileSync(join(out, "plan.txt"), summary(plan));
  writeFileSync(join(out, "alerts.yml"), alertRulesFile(config));
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
  for (const warning of plan.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(
    `Rendered ${plan.steps.length} units (${files} files) for ${config.mailDomain} into ${out}\n` +
      `  files/ (server paths), zone.txt, plan.txt, alerts.yml\n`,
  );
  return 0;
}

process.exitCode = main();
