// chatmaild: every relay daemon in one Node program, so that they share one runtime's memory (the budget is
// 100 MB resident for all of them on a 1 GB server). Usage:
//   node chatmaild.js <chatmail.ini> <service> [<service> ...] [--option value ...]
//   node chatmaild.js <chatmail.ini> expire [--dry-run] [-v] [--maxnum N]
//   node chatmaild.js <chatmail.ini> fsreport [--textfile DIR] [--legacy-metrics [FILE]] [--days N] [--mdir cur|new|tmp]
//   node chatmaild.js <chatmail.ini> quota-expire <target-mb> <mailbox-dir>
// Services: doveauth, lastlogin, metadata, newaccount, filtermail-outgoing, filtermail-incoming. SIGTERM closes all.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isMainThread, workerData } from "node:worker_threads";
import { parseChatmailIni } from "../core/config/ini";
import type { RelayConfig } from "../core/config/options";
import { startDoveauth } from "./doveauth";
import { HASH_WORKER_ROLE, inlineHasher, runHashWorker, workerHasher } from "./doveauth/hashpool";
import { quotaExpire, runExpire } from "./expire";
import { startFiltermail } from "./filtermail";
import { buildReport, legacyMetricsText, prometheusText, summaryText, writePublic } from "./fsreport";
import { startLastlogin } from "./lastlogin";
import { createLogger } from "./dictproxy/log";
import { startMetadata } from "./metadata";
import { startNewAccount } from "./newaccount";
import {
  DOVEAUTH_SOCKET,
  FSREPORT_TEXTFILE_DIR,
  LASTLOGIN_SOCKET,
  LEGACY_METRICS_FILE,
  METADATA_SOCKET,
  NOCREATE_FILE,
  SERVICES,
  VMAIL_USER,
} from "./paths";
import type { Service } from "./service";

export { SERVICES };
export type ServiceName = (typeof SERVICES)[number];
const ONE_SHOTS = ["expire", "fsreport", "quota-expire"] as const;

/** Options that take a value, with their defaults; flags are listed separately. */
const VALUE_OPTIONS: Record<string, string | undefined> = {
  "--doveauth-socket": DOVEAUTH_SOCKET,
  "--metadata-socket": METADATA_SOCKET,
  "--lastlogin-socket": LASTLOGIN_SOCKET,
  "--nocreate-file": NOCREATE_FILE,
  "--mail-user": VMAIL_USER,
  "--turn-socket": undefined,
  "--textfile": undefined,
  "--maxnum": undefined,
  "--days": undefined,
  "--min-login-age": undefined,
  "--mdir": undefined,
};
const FLAGS = new Set(["--dry-run", "-v", "--legacy-metrics"]);

export class UsageError extends Error {}

export interface Invocation {
  iniPath: string;
  commands: string[];
  options: Record<string, string | undefined>;
  flags: Set<string>;
}

export function parseArgs(argv: string[]): Invocation {
  const [iniPath, ...rest] = argv;
  if (!iniPath || iniPath.startsWith("-")) throw new UsageError("first argument: the path of chatmail.ini");
  const commands: string[] = [];
  const options: Record<string, string | undefined> = { ...VALUE_OPTIONS };
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg in VALUE_OPTIONS) {
      const value = rest[++i];
      if (value === undefined) throw new UsageError(`${arg}: needs a value`);
      options[arg] = value;
    } else if (arg === "--legacy-metrics") {
      flags.add(arg);
      if (rest[i + 1] !== undefined && rest[i + 1].startsWith("/")) options[arg] = rest[++i];
    } else if (FLAGS.has(arg)) flags.add(arg);
    else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
    else commands.push(arg);
  }
  if (commands.length === 0)
    throw new UsageError(`name a service (${SERVICES.join(", ")}) or a command (${ONE_SHOTS.join(", ")})`);
  const oneShot = commands.find((c) => (ONE_SHOTS as readonly string[]).includes(c));
  if (oneShot && oneShot !== commands[0]) throw new UsageError(`${oneShot} must be the only command`);
  if (!oneShot) {
    for (const c of commands) {
      if (!(SERVICES as readonly string[]).includes(c)) {
        throw new UsageError(
          `unknown service ${JSON.stringify(c)}; use ${SERVICES.join(", ")}, or one of ${ONE_SHOTS.join(", ")}`,
        );
      }
    }
  }
  return { iniPath, commands, options, flags };
}

function intOption(inv: Invocation, name: string): number | undefined {
  const v = inv.options[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}: ${JSON.stringify(v)} is not a whole number`);
  return Number(v);
}

async function startService(name: ServiceName, config: RelayConfig, inv: Invocation): Promise<Service> {
  switch (name) {
    case "doveauth":
      // Inside the bundle, hashing runs in worker threads that load this same file.
      return startDoveauth(config, {
        socketPath: inv.options["--doveauth-socket"],
        nocreateFile: inv.options["--nocreate-file"],
        mailUser: inv.options["--mail-user"],
        hasher: __filename.endsWith(".js") ? workerHasher(__filename) : inlineHasher(),
      });
    case "lastlogin":
      return startLastlogin(config, { socketPath: inv.options["--lastlogin-socket"] });
    case "metadata":
      return startMetadata(config, {
        socketPath: inv.options["--metadata-socket"],
        turnSocketPath: inv.options["--turn-socket"],
      });
    case "newaccount":
      return startNewAccount(config);
    case "filtermail-outgoing":
      return startFiltermail(config, "outgoing");
    case "filtermail-incoming":
      return startFiltermail(config, "incoming");
  }
}

async function runOneShot(config: RelayConfig, inv: Invocation, args: string[]): Promise<number> {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const days = intOption(inv, "--days") ?? 0;
  const now = Date.now() / 1000 - days * 86400;
  switch (inv.commands[0]) {
    case "expire": {
      const verbose = inv.flags.has("-v");
      await runExpire(config, {
        dryRun: inv.flags.has("--dry-run"),
        now,
        maxnum: intOption(inv, "--maxnum"),
        out: (line) => (verbose || !line.startsWith("removing") ? out(line) : undefined),
      });
      return 0;
    }
    case "fsreport": {
      const mdir = inv.options["--mdir"];
      if (mdir !== undefined && mdir !== "cur" && mdir !== "new" && mdir !== "tmp") {
        throw new UsageError(`--mdir: ${JSON.stringify(mdir)} is not allowed; use cur, new or tmp`);
      }
      const report = await buildReport(config, {
        now,
        maxnum: intOption(inv, "--maxnum"),
        minLoginAgeDays: intOption(inv, "--min-login-age"),
        mdir,
      });
      const textfile = inv.options["--textfile"];
      if (textfile !== undefined)
        await writePublic(
          join(textfile === "" ? FSREPORT_TEXTFILE_DIR : textfile, "fsreport.prom"),
          prometheusText(report),
        );
      if (inv.flags.has("--legacy-metrics"))
        await writePublic(inv.options["--legacy-metrics"] ?? LEGACY_METRICS_FILE, legacyMetricsText(report));
      if (textfile === undefined && !inv.flags.has("--legacy-metrics"))
        process.stdout.write(summaryText(report));
      return 0;
    }
    case "quota-expire": {
      const [mb, dir] = args;
      if (!/^\d+$/.test(mb ?? "") || !dir)
        throw new UsageError("quota-expire needs <target-mb> <mailbox-dir>");
      await quotaExpire(Number(mb), dir);
      return 0;
    }
  }
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  const log = createLogger("chatmaild");
  let inv: Invocation;
  // quota-expire's own arguments (<mb> <dir>) would look like service names; take them off first.
  const qe = argv.indexOf("quota-expire");
  const qeArgs = qe === -1 ? [] : argv.slice(qe + 1);
  try {
    inv = parseArgs(qe === -1 ? argv : argv.slice(0, qe + 1));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    log.error(`usage: ${err.message}`);
    return 2;
  }
  const parsed = parseChatmailIni(readFileSync(inv.iniPath, "utf8"));
  if (parsed.unknownKeys.length > 0)
    log.warn(`${inv.iniPath}: ignoring unknown keys ${parsed.unknownKeys.join(", ")}`);
  const config = parsed.config;
  if ((ONE_SHOTS as readonly string[]).includes(inv.commands[0])) {
    try {
      return await runOneShot(config, inv, qeArgs);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      log.error(`usage: ${err.message}`);
      return 2;
    }
  }

  const services: Service[] = [];
  try {
    for (const name of inv.commands as ServiceName[]) {
      services.push(await startService(name, config, inv));
      log.info(`${name} started`);
    }
  } catch (err) {
    log.error(`start failed: ${(err as Error).message}`);
    await Promise.allSettled(services.map((s) => s.close()));
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info(`${signal}: closing ${inv.commands.join(", ")}`);
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await Promise.allSettled(services.map((s) => s.close()));
  return 0;
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === HASH_WORKER_ROLE) {
  runHashWorker();
} else if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`chatmaild: ${err.message}\n`);
      process.exit(1);
    },
  );
}
