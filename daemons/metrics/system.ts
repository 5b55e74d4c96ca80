// The gauges read from the server at scrape time (docs/metrics.md): accounts, the TLS certificate's expiry, free
// disk and memory against the creation limits, Postfix's queue and whether the plan's services run. Reads that
// cost something happen at most once per interval, whatever the scrape rate; a read that fails is logged once
// (again only after it worked in between) and leaves its gauge absent, or -1 for the certificate.
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { opendir, readFile, stat, statfs } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseSizeMb, type DaemonConfig } from "../config";
import type { Logger } from "../dictproxy/log";
import type { Registry } from "./registry";

export type SystemConfig = Pick<DaemonConfig, "mailboxesDir" | "minFreeDiskSpace" | "minAvailableMemory">;

/** What only the plan knows (core/server.ts METRICS_FACTS): the services it runs, the certificate it serves. */
export interface MetricsFacts {
  readonly units: readonly string[];
  readonly tlsCert?: string;
}

export const ACCOUNTS_EVERY_MS = 60_000;
export const QUEUE_EVERY_MS = 60_000;
export const UNITS_EVERY_MS = 60_000;
export const CERTIFICATE_EVERY_MS = 3_600_000;
/** A command that takes longer is killed and counts as failed. */
export const COMMAND_TIMEOUT_MS = 30_000;
/** At most this many units are reported: the label set stays small whatever the file says. */
const MAX_UNITS = 64;
const UNIT_NAME = /^[A-Za-z0-9@._-]{1,100}\.(service|timer|socket|path)$/;
const MIB = 1024 * 1024;

/** Postfix's queue listing service, in its queue directory; connecting needs the group postdrop. */
export const SHOWQ_SOCKET = "/var/spool/postfix/public/showq";

export interface SystemOptions {
  readonly facts: MetricsFacts | undefined;
  readonly log: Logger;
  /** The clock, in ms (tests). */
  readonly now?: () => number;
  /** Postfix's showq socket (tests give a stand-in or a test Postfix's). */
  readonly showqSocket?: string;
  /** `systemctl` (tests give a stand-in). */
  readonly systemctl?: string;
  readonly meminfo?: string;
}

/** Reads a facts file; undefined (logged) when it is missing or not what the plan writes. */
export async function readFacts(path: string, log: Logger): Promise<MetricsFacts | undefined> {
  try {
    return parseFacts(await readFile(path, "utf8"));
  } catch (err) {
    log.warn(`metrics: ${path}: ${(err as Error).message}; no unit or certificate metrics`);
    return undefined;
  }
}

/** The facts file: `tls_cert <path>` and `unit <name>` lines; `#` starts a comment line. */
export function parseFacts(text: string): MetricsFacts {
  const units: string[] = [];
  let tlsCert: string | undefined;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [key, value, extra] = line.split(/\s+/);
    if (key === "unit" && value !== undefined && extra === undefined && UNIT_NAME.test(value))
      units.push(value);
    else if (key === "tls_cert" && value?.startsWith("/") && extra === undefined) tlsCert = value;
    else throw new Error(`line ${i + 1}: expected "unit <systemd unit>" or "tls_cert <absolute path>"`);
  });
  return { units: units.slice(0, MAX_UNITS), tlsCert };
}

/**
 * Logs a failing read once, and once more when it works again. A quiet failure (a known, passing state such as
 * Postfix not running) is an info line; a loud one that follows it is still warned about.
 */
class Trouble {
  private failing: false | "quiet" | "loud" = false;
  constructor(
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  fail(message: string, quietly = false): void {
    const kind = quietly ? "quiet" : "loud";
    if (this.failing === kind || this.failing === "loud") return;
    const line = `metrics: ${this.what}: ${message}; logged once`;
    if (quietly) this.log.info(line);
    else this.log.warn(line);
    this.failing = kind;
  }

  ok(): void {
    if (this.failing) this.log.info(`metrics: ${this.what} works again`);
    this.failing = false;
  }
}

/** Runs `refresh` at most once per `ms`; callers in between share the running one or return at once. */
class Every {
  private at = -Infinity;
  private running: Promise<void> | undefined;

  constructor(
    private readonly ms: number,
    private readonly now: () => number,
    private readonly refresh: () => Promise<void>,
  ) {}

  run(): Promise<void> {
    if (this.running) return this.running;
    const now = this.now();
    if (now - this.at < this.ms) return Promise.resolve();
    this.at = now;
    this.running = this.refresh().finally(() => (this.running = undefined));
    return this.running;
  }
}

/** Accounts: directories under mailboxesDir with a non-empty password file (docs/daemons.md, 'Accounts on disk'). */
export async function countAccounts(mailboxesDir: string): Promise<number> {
  let count = 0;
  let batch: Promise<boolean>[] = [];
  const settle = async () => {
    count += (await Promise.all(batch)).filter(Boolean).length;
    batch = [];
  };
  for await (const entry of await opendir(mailboxesDir)) {
    if (!entry.isDirectory() || !entry.name.includes("@")) continue;
    batch.push(
      stat(join(mailboxesDir, entry.name, "password")).then(
        (s) => s.size > 0,
        () => false,
      ),
    );
    if (batch.length >= 64) await settle();
  }
  await settle();
  return count;
}

/** notAfter of the first certificate in a PEM file, in Unix seconds. */
export async function certificateExpiry(path: string): Promise<number> {
  const pem = await readFile(path, "utf8");
  const block = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem);
  if (!block) throw new Error("no PEM certificate in the file");
  const notAfter = Date.parse(new X509Certificate(block[0]).validTo);
  if (Number.isNaN(notAfter)) throw new Error("unreadable notAfter");
  return notAfter / 1000;
}

/** Runs a command, handing each line of its output to `onLine`; its exit code and the start of its stderr. */
export function runLines(
  argv: readonly string[],
  onLine: (line: string) => void,
  timeoutMs = COMMAND_TIMEOUT_MS,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < 500) stderr += d.toString("utf8");
    });
    createInterface({ input: child.stdout }).on("line", onLine);
    child.on("error", (err) => resolve({ code: null, stderr: err.message }));
    child.on("close", (code) => resolve({ code, stderr: stderr.trim().slice(0, 500) }));
  });
}

export interface PostfixQueue {
  readonly messages: number;
  /** Arrival time of the oldest message (Unix seconds); undefined when the queue is empty. */
  readonly oldest: number | undefined;
}

/** What showq announces itself as (MAIL_ATTR_PROTO_SHOWQ in Postfix's src/global/mail_proto.h). */
const SHOWQ_PROTOCOL = "mail_queue_list_protocol";

/** Postfix is not running (no socket, or nobody listening): nothing wrong with the metrics themselves. */
export class PostfixDownError extends Error {}

/**
 * Reads Postfix's queue from its showq service, as `postqueue -j` does (Postfix 3.7, src/showq/showq.c and
 * src/postqueue/showq_json.c), without running postqueue: its setgid bit would not count under chatmaild's
 * NoNewPrivileges, it needs netlink sockets, and it logs a fatal error to the journal whenever Postfix is not
 * running. The stream is Postfix's null-terminated attribute format: `name\0value\0` pairs, a lone `\0` ending
 * a list. First the list {protocol: mail_queue_list_protocol}; then per message one list (queue_name, queue_id, time, size,
 * forced_expire, sender, then recipient and reason pairs); an empty list ends the queue. Only the count and the
 * oldest `time` are kept, so a long queue costs no memory.
 */
export function readShowq(socketPath: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<PostfixQueue> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let rest = Buffer.alloc(0);
    let name: string | undefined; // the attribute whose value comes next
    let listSize = 0; // attributes in the current list
    let time: number | undefined; // of the current list
    let greeted = false;
    let messages = 0;
    let oldest: number | undefined;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      sock.destroy();
      if (err) reject(err);
      else resolve({ messages, oldest });
    };
    const token = (text: string): void => {
      if (name !== undefined) {
        if (name === "time" && /^\d+$/.test(text)) time = Number(text);
        if (name === "protocol" && !greeted && text !== SHOWQ_PROTOCOL)
          return finish(new Error(`showq: unexpected protocol ${JSON.stringify(text.slice(0, 40))}`));
        name = undefined;
        listSize++;
        return;
      }
      if (text !== "") {
        name = text;
        return;
      }
      // A lone \0: the end of a list.
      if (!greeted) {
        if (listSize === 0) return finish(new Error("showq: no protocol announcement"));
        greeted = true;
      } else if (listSize === 0) {
        return finish();
      } else {
        messages++;
        if (time !== undefined && (oldest === undefined || time < oldest)) oldest = time;
      }
      listSize = 0;
      time = undefined;
    };
    sock.setTimeout(timeoutMs, () => finish(new Error(`showq: no complete answer within ${timeoutMs} ms`)));
    sock.on("data", (chunk: Buffer) => {
      let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      let nul: number;
      while (!done && (nul = data.indexOf(0)) !== -1) {
        token(data.toString("latin1", 0, nul));
        data = data.subarray(nul + 1);
      }
      // An unfinished token waits for the next chunk; one that never ends is not Postfix talking.
      rest = Buffer.from(data);
      if (rest.length > 1 << 20) finish(new Error("showq: a field longer than 1 MiB"));
    });
    sock.on("error", (err: NodeJS.ErrnoException) =>
      finish(
        err.code === "ENOENT" || err.code === "ECONNREFUSED"
          ? new PostfixDownError(`Postfix is not running (${err.code} on ${socketPath})`)
          : err,
      ),
    );
    sock.on("close", () => finish(new Error("showq: the connection closed before the end of the queue")));
  });
}

/** Whether each unit is active, by `systemctl is-active` (one line per unit, in order). */
export async function activeUnits(systemctl: string, units: readonly string[]): Promise<boolean[]> {
  const states: string[] = [];
  const { stderr } = await runLines([systemctl, "is-active", ...units], (line) => states.push(line.trim()));
  // is-active exits non-zero when any unit is not active; the lines are what count.
  if (states.length !== units.length)
    throw new Error(
      `systemctl is-active answered ${states.length} lines for ${units.length} units: ${stderr}`,
    );
  return states.map((s) => s === "active" || s === "reloading");
}

async function memAvailableBytes(path: string): Promise<number> {
  const match = /^MemAvailable:\s+(\d+) kB$/m.exec(await readFile(path, "utf8"));
  if (!match) throw new Error(`no MemAvailable in ${path}`);
  return Number(match[1]) * 1024;
}

/** Adds the server's gauges to `registry`, read before each render as their intervals allow. */
export function addSystemMetrics(registry: Registry, config: SystemConfig, opts: SystemOptions): void {
  const now = opts.now ?? Date.now;
  const trouble = (what: string) => new Trouble(opts.log, what);

  const accounts = registry.gauge("chatmail_accounts", "Accounts: mailbox directories with a password file.");
  const accountsTrouble = trouble(`counting accounts in ${config.mailboxesDir}`);
  const accountsEvery = new Every(ACCOUNTS_EVERY_MS, now, async () => {
    try {
      accounts.set(await countAccounts(config.mailboxesDir));
      accountsTrouble.ok();
    } catch (err) {
      accounts.set(undefined);
      accountsTrouble.fail((err as Error).message);
    }
  });

  const diskFree = registry.gauge(
    "chatmail_disk_free_bytes",
    "Free disk space for unprivileged users on the file system of the mailboxes.",
  );
  registry
    .gauge(
      "chatmail_disk_min_free_bytes",
      "minFreeDiskSpace: below this much free disk no new account is created.",
    )
    .set(parseSizeMb(config.minFreeDiskSpace) * MIB);
  const diskTrouble = trouble(`free disk of ${config.mailboxesDir}`);
  const memAvailable = registry.gauge(
    "chatmail_memory_available_bytes",
    "MemAvailable of /proc/meminfo: memory available without swapping.",
  );
  registry
    .gauge(
      "chatmail_memory_min_available_bytes",
      "minAvailableMemory: below this much available memory no new account is created.",
    )
    .set(parseSizeMb(config.minAvailableMemory) * MIB);
  const memTrouble = trouble("available memory");

  const queueMessages = registry.gauge(
    "chatmail_postfix_queue_messages",
    "Messages in Postfix's queue (as postqueue -j lists them, read at most once a minute).",
  );
  const queueOldest = registry.gauge(
    "chatmail_postfix_queue_oldest_age_seconds",
    "Age of the oldest message in Postfix's queue; 0 when it is empty.",
  );
  const showq = opts.showqSocket ?? SHOWQ_SOCKET;
  const queueTrouble = trouble(`reading Postfix's queue from ${showq}`);
  const queueEvery = new Every(QUEUE_EVERY_MS, now, async () => {
    try {
      const queue = await readShowq(showq);
      queueMessages.set(queue.messages);
      queueOldest.set(queue.oldest === undefined ? 0 : Math.max(0, Math.floor(now() / 1000 - queue.oldest)));
      queueTrouble.ok();
    } catch (err) {
      queueMessages.set(undefined);
      queueOldest.set(undefined);
      // Postfix down (at boot chatmaild starts first, and during its restarts) is shown by its unit's gauge; it
      // is noted, not warned about.
      queueTrouble.fail((err as Error).message, err instanceof PostfixDownError);
    }
  });

  const units = opts.facts?.units ?? [];
  const unitActive = registry.gauge(
    "chatmail_unit_active",
    "1 when the systemd unit the relay's plan runs is active, else 0 (systemctl is-active, at most once a minute).",
    { series: units.map((unit) => ({ unit })) },
  );
  const systemctl = opts.systemctl ?? "/usr/bin/systemctl";
  const unitsTrouble = trouble("systemctl is-active");
  const unitsEvery = new Every(UNITS_EVERY_MS, now, async () => {
    if (units.length === 0) return;
    try {
      const active = await activeUnits(systemctl, units);
      units.forEach((unit, i) => unitActive.set(active[i] ? 1 : 0, { unit }));
      unitsTrouble.ok();
    } catch (err) {
      for (const unit of units) unitActive.set(undefined, { unit });
      unitsTrouble.fail((err as Error).message);
    }
  });

  const certificate = opts.facts?.tlsCert;
  const certExpiry = registry.gauge(
    "chatmail_certificate_expiry_timestamp_seconds",
    "notAfter of the TLS certificate the relay serves, in Unix time (read hourly); -1 when it cannot be read.",
  );
  const certTrouble = trouble(`reading the certificate ${certificate}`);
  const certEvery = new Every(CERTIFICATE_EVERY_MS, now, async () => {
    if (certificate === undefined) return;
    try {
      certExpiry.set(await certificateExpiry(certificate));
      certTrouble.ok();
    } catch (err) {
      certExpiry.set(-1);
      certTrouble.fail((err as Error).message);
    }
  });

  const started = now() / 1000 - process.uptime();
  registry.gauge("process_start_time_seconds", "Start time of chatmaild in Unix time.").set(started);
  const rss = registry.gauge("process_resident_memory_bytes", "Resident memory of chatmaild.");

  registry.collect(async () => {
    const disk = statfs(config.mailboxesDir).then(
      (s) => {
        diskFree.set(s.bavail * s.bsize);
        diskTrouble.ok();
      },
      (err: Error) => {
        diskFree.set(undefined);
        diskTrouble.fail(err.message);
      },
    );
    const mem = memAvailableBytes(opts.meminfo ?? "/proc/meminfo").then(
      (bytes) => {
        memAvailable.set(bytes);
        memTrouble.ok();
      },
      (err: Error) => {
        memAvailable.set(undefined);
        memTrouble.fail(err.message);
      },
    );
    rss.set(process.memoryUsage.rss());
    await Promise.all([disk, mem, accountsEvery.run(), queueEvery.run(), unitsEvery.run(), certEvery.run()]);
  });
}
