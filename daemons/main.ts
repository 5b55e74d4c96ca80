// chatmaild: every relay daemon in one Node program, so that they share one runtime's memory (the budget is
// 100 MB resident for all of them on a 1 GB server). Usage:
//   node chatmaild.js <chatmail.ini> <service> [<service> ...] [--option value ...]
//   node chatmaild.js <chatmail.ini> expire [--dry-run] [-v] [--maxnum N]
//   node chatmaild.js <chatmail.ini> fsreport [--textfile DIR] [--legacy-metrics [FILE]] [--days N] [--mdir cur|new|tmp]
//   node chatmaild.js <chatmail.ini> quota-expire <target-mb> <mailbox-dir>
// Services: doveauth, lastlogin, metadata, newaccount, filtermail-outgoing, filtermail-incoming. SIGTERM closes all.
// With metricsAddress set (the default is 127.0.0.1), the services' process also serves Prometheus metrics on
// metricsAddress:9103 (docs/metrics.md).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  DOVEAUTH_SOCKET,
  FSREPORT_TEXTFILE_DIR,
  LASTLOGIN_SOCKET,
  LEGACY_METRICS_FILE,
  METADATA_SOCKET,
  METRICS_FACTS,
  METRICS_PORT,
  NOCREATE_FILE,
  SERVICES,
  VMAIL_USER,
  type ServiceName,
} from "../core/server";
import { readDaemonConfig, type DaemonConfig } from "./config";
import { startDoveauth } from "./doveauth";
import { quotaExpire, runExpire } from "./expire";
import { startFiltermail } from "./filtermail";
import { buildReport, legacyMetricsText, prometheusText, summaryText, writePublic } from "./fsreport";
import { startLastlogin } from "./lastlogin";
import { createLogger, type Logger } from "./dictproxy/log";
import { startMetadata } from "./metadata";
import { startMetrics } from "./metrics";
import { startNewAccount } from "./newaccount";
import type { Service } from "./service";

const ONE_SHOTS = ["expire", "fsreport", "quota-expire"] as const;

/** The options (node:util parseArgs), spelled `--name`, or `-v` for the one letter; defaults where they have one. */
const OPTIONS = {
  "doveauth-socket": { type: "string", default: DOVEAUTH_SOCKET },
  "metadata-socket": { type: "string", default: METADATA_SOCKET },
  "lastlogin-socket": { type: "string", default: LASTLOGIN_SOCKET },
  "nocreate-file": { type: "string", default: NOCREATE_FILE },
  "mail-user": { type: "string", default: VMAIL_USER },
  /** The file holding coturn's shared secret (with turnServer; systemd's credentials copy of it). */
  "turn-secret": { type: "string" },
  "metrics-facts": { type: "string", default: METRICS_FACTS },
  "metrics-port": { type: "string", default: String(METRICS_PORT) },
  textfile: { type: "string" },
  maxnum: { type: "string" },
  days: { type: "string" },
  "min-login-age": { type: "string" },
  mdir: { type: "string" },
  "dry-run": { type: "boolean" },
  v: { type: "boolean" },
  /** May be followed by the file to write, an absolute path (see legacyMetricsFile). */
  "legacy-metrics": { type: "boolean" },
} as const;

type OptionName = keyof typeof OPTIONS;
type OptionValues = {
  [K in OptionName]: (typeof OPTIONS)[K] extends { default: string }
    ? string
    : (typeof OPTIONS)[K] extends { type: "string" }
      ? string | undefined
      : boolean | undefined;
};

export class UsageError extends Error {}

export interface Invocation {
  iniPath: string;
  /** Service names, or one one-shot command. */
  commands: string[];
  values: OptionValues;
  /** The file named after --legacy-metrics, if any. */
  legacyMetricsFile?: string;
}

/** Reads the command line (without node and the script): the ini path first, then commands and options. */
export function parseInvocation(argv: string[]): Invocation {
  const [iniPath, ...args] = argv;
  if (!iniPath || iniPath.startsWith("-")) throw new UsageError("first argument: the path of chatmail.ini");
  // Not strict: unknown options and missing values are reported below, in this program's words.
  const { values, tokens } = parseArgs({
    args,
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const consumed = new Set<number>();
  let legacyMetricsFile: string | undefined;
  for (const token of tokens) {
    const raw = args[token.index];
    if (token.kind === "positional" && !raw.startsWith("-")) continue;
    if (token.kind !== "option") throw new UsageError(`unknown option ${raw}`); // "-" or "--"
    // Only the plain spelling counts: no --name=value, no grouped letters.
    const spelling = token.name.length === 1 ? `-${token.name}` : `--${token.name}`;
    if (!Object.hasOwn(OPTIONS, token.name) || raw !== spelling)
      throw new UsageError(`unknown option ${raw}`);
    if (OPTIONS[token.name as OptionName].type === "string" && token.value === undefined)
      throw new UsageError(`${raw}: needs a value`);
    if (token.name === "legacy-metrics" && args[token.index + 1]?.startsWith("/")) {
      legacyMetricsFile = args[token.index + 1];
      consumed.add(token.index + 1);
    }
  }
  const commands = tokens.flatMap((t) =>
    t.kind === "positional" && !consumed.has(t.index) ? [t.value] : [],
  );
  checkCommands(commands);
  return { iniPath, commands, values: values as OptionValues, legacyMetricsFile };
}

/** Services only, or exactly one one-shot command. */
function checkCommands(commands: string[]): void {
  if (commands.length === 0)
    throw new UsageError(`name a service (${SERVICES.join(", ")}) or a command (${ONE_SHOTS.join(", ")})`);
  const oneShot = commands.find((c) => (ONE_SHOTS as readonly string[]).includes(c));
  if (oneShot && oneShot !== commands[0]) throw new UsageError(`${oneShot} must be the only command`);
  if (oneShot) return;
  for (const c of commands) {
    if (!(SERVICES as readonly string[]).includes(c)) {
      throw new UsageError(
        `unknown service ${JSON.stringify(c)}; use ${SERVICES.join(", ")}, or one of ${ONE_SHOTS.join(", ")}`,
      );
    }
  }
}

function intOption(inv: Invocation, name: "maxnum" | "days" | "min-login-age"): number | undefined {
  const v = inv.values[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name}: ${JSON.stringify(v)} is not a whole number`);
  return Number(v);
}

async function startService(
  name: ServiceName,
  config: DaemonConfig,
  inv: Invocation,
  log: Logger,
): Promise<Service> {
  switch (name) {
    case "doveauth":
      return startDoveauth(config, {
        socketPath: inv.values["doveauth-socket"],
        nocreateFile: inv.values["nocreate-file"],
        mailUser: inv.values["mail-user"],
      });
    case "lastlogin":
      return startLastlogin(config, { socketPath: inv.values["lastlogin-socket"] });
    case "metadata":
      return startMetadata(config, {
        socketPath: inv.values["metadata-socket"],
        turnSecret: readTurnSecret(inv.values["turn-secret"], log),
      });
    case "newaccount":
      return startNewAccount(config);
    case "filtermail-outgoing":
      return startFiltermail(config, "outgoing");
    case "filtermail-incoming":
      return startFiltermail(config, "incoming");
  }
}

/**
 * The TURN secret from --turn-secret, or undefined without it. An unreadable or empty file costs only the `turn`
 * entry (clients then use their built-in TURN server): it is logged, and the other daemons start as usual.
 */
function readTurnSecret(path: string | undefined, log: Logger): string | undefined {
  if (path === undefined) return undefined;
  try {
    const secret = readFileSync(path, "utf8").trim();
    if (secret !== "") return secret;
    log.error(`--turn-secret ${path} is empty; the turn entry stays absent`);
  } catch (err) {
    log.error(`--turn-secret ${path}: ${(err as Error).message}; the turn entry stays absent`);
  }
  return undefined;
}

const out = (line: string): void => void process.stdout.write(`${line}\n`);

async function expireCommand(config: DaemonConfig, inv: Invocation, now: number): Promise<void> {
  const verbose = inv.values.v === true;
  await runExpire(config, {
    dryRun: inv.values["dry-run"] === true,
    now,
    maxnum: intOption(inv, "maxnum"),
    out: (line) => (verbose || !line.startsWith("removing") ? out(line) : undefined),
  });
}

async function fsreportCommand(config: DaemonConfig, inv: Invocation, now: number): Promise<void> {
  const mdir = inv.values.mdir;
  if (mdir !== undefined && mdir !== "cur" && mdir !== "new" && mdir !== "tmp") {
    throw new UsageError(`--mdir: ${JSON.stringify(mdir)} is not allowed; use cur, new or tmp`);
  }
  const report = await buildReport(config, {
    now,
    maxnum: intOption(inv, "maxnum"),
    minLoginAgeDays: intOption(inv, "min-login-age"),
    mdir,
  });
  const textfile = inv.values.textfile;
  const legacy = inv.values["legacy-metrics"] === true;
  if (textfile !== undefined)
    await writePublic(
      join(textfile === "" ? FSREPORT_TEXTFILE_DIR : textfile, "fsreport.prom"),
      prometheusText(report),
    );
  if (legacy) await writePublic(inv.legacyMetricsFile ?? LEGACY_METRICS_FILE, legacyMetricsText(report));
  if (textfile === undefined && !legacy) process.stdout.write(summaryText(report));
}

async function quotaExpireCommand(args: string[]): Promise<void> {
  const [mb, dir] = args;
  if (!/^\d+$/.test(mb ?? "") || !dir) throw new UsageError("quota-expire needs <target-mb> <mailbox-dir>");
  await quotaExpire(Number(mb), dir);
}

async function runOneShot(config: DaemonConfig, inv: Invocation, args: string[]): Promise<number> {
  // The moment the jobs take as now: --days N moves it N days back.
  const now = Date.now() / 1000 - (intOption(inv, "days") ?? 0) * 86400;
  switch (inv.commands[0]) {
    case "expire":
      await expireCommand(config, inv, now);
      return 0;
    case "fsreport":
      await fsreportCommand(config, inv, now);
      return 0;
    case "quota-expire":
      await quotaExpireCommand(args);
      return 0;
  }
  return 2;
}

/** Starts the services in order; when one fails: logged, those already started closed, undefined. */
async function startServices(
  config: DaemonConfig,
  inv: Invocation,
  log: Logger,
): Promise<Service[] | undefined> {
  const services: Service[] = [];
  try {
    for (const name of inv.commands as ServiceName[]) {
      services.push(await startService(name, config, inv, log));
      log.info(`${name} started`);
    }
  } catch (err) {
    log.error(`start failed: ${(err as Error).message}`);
    await Promise.allSettled(services.map((s) => s.close()));
    return undefined;
  }
  return services;
}

/**
 * The metrics listener, when metricsAddress is set. A listener that cannot start is logged and left out: metrics
 * must never keep mail from flowing.
 */
async function startMetricsListener(
  config: DaemonConfig,
  inv: Invocation,
  log: Logger,
): Promise<Service | undefined> {
  if (config.metricsAddress === "") return undefined;
  const port = inv.values["metrics-port"];
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    log.error(`usage: --metrics-port: ${JSON.stringify(port)} is not a port; no metrics`);
    return undefined;
  }
  try {
    return await startMetrics(config, { port: Number(port), factsPath: inv.values["metrics-facts"] });
  } catch (err) {
    log.error(`metrics: not served: ${(err as Error).message}`);
    return undefined;
  }
}

/** Resolves at the first SIGTERM or SIGINT. */
function untilSignal(log: Logger, what: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info(`${signal}: closing ${what}`);
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
}

export async function main(argv: string[]): Promise<number> {
  const log = createLogger("chatmaild");
  let inv: Invocation;
  // quota-expire's own arguments (<mb> <dir>) would look like service names; take them off first.
  const qe = argv.indexOf("quota-expire");
  const qeArgs = qe === -1 ? [] : argv.slice(qe + 1);
  try {
    inv = parseInvocation(qe === -1 ? argv : argv.slice(0, qe + 1));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    log.error(`usage: ${err.message}`);
    return 2;
  }
  const config = readDaemonConfig(inv.iniPath, (message) => log.warn(message));
  if ((ONE_SHOTS as readonly string[]).includes(inv.commands[0])) {
    try {
      return await runOneShot(config, inv, qeArgs);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      log.error(`usage: ${err.message}`);
      return 2;
    }
  }

  const services = await startServices(config, inv, log);
  if (!services) return 1;
  const metrics = await startMetricsListener(config, inv, log);
  if (metrics) services.push(metrics);
  await untilSignal(log, inv.commands.join(", "));
  await Promise.allSettled(services.map((s) => s.close()));
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`chatmaild: ${err.message}\n`);
      process.exit(1);
    },
  );
}
