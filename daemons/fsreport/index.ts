// The storage and activity report (docs/daemons.md, 'Expiry and reports'; upstream chatmail-fsreport:
// chatmail/relay 1.12.0, chatmaild/src/chatmaild/fsreport.py, and for the legacy file 1.7.0's metrics.py):
// accounts, recent logins, message bytes by size class. Output is a human summary, a Prometheus text file for
// node-exporter's textfile collector, or the legacy public metrics file of relays before 1.10. Read-only.
import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DaemonConfig } from "../config";
import { listMailboxDirs, statMailbox } from "../expire/mailbox";

export const LOGIN_BUCKET_DAYS = [1, 10, 30, 40, 80, 100, 150] as const;
export const SIZE_THRESHOLDS = [
  0,
  100 * 1024,
  512 * 1024,
  1024 * 1024,
  2 * 1024 * 1024,
  5 * 1024 * 1024,
  10 * 1024 * 1024,
] as const;

export interface ReportOptions {
  now?: number;
  /** Size buckets only count mailboxes whose last login is at least this many days old. */
  minLoginAgeDays?: number;
  /** Only messages under this folder kind (cur, new or tmp) count. */
  mdir?: "cur" | "new" | "tmp";
  maxnum?: number;
}

export interface Report {
  accountsAll: number;
  accountsCi: number;
  /** Non-CI accounts with a login within N days, per LOGIN_BUCKET_DAYS. */
  activeWithinDays: Record<number, number>;
  bytesAtLeast: Record<number, number>;
  countAtLeast: Record<number, number>;
  sizeMessages: number;
  sizeExtra: number;
}

const isCi = (name: string): boolean => name.startsWith("ci-") || name.startsWith("ac_");

export async function buildReport(
  config: Pick<DaemonConfig, "mailboxesDir">,
  opts: ReportOptions = {},
): Promise<Report> {
  const now = opts.now ?? Date.now() / 1000;
  const report: Report = {
    accountsAll: 0,
    accountsCi: 0,
    activeWithinDays: Object.fromEntries(LOGIN_BUCKET_DAYS.map((d) => [d, 0])),
    bytesAtLeast: Object.fromEntries(SIZE_THRESHOLDS.map((t) => [t, 0])),
    countAtLeast: Object.fromEntries(SIZE_THRESHOLDS.map((t) => [t, 0])),
    sizeMessages: 0,
    sizeExtra: 0,
  };
  for (const dir of (await listMailboxDirs(config.mailboxesDir, opts.maxnum)) ?? []) {
    const mbox = await statMailbox(dir);
    report.sizeMessages += mbox.messages.reduce((n, m) => n + m.size, 0);
    report.sizeExtra += mbox.extraFiles.reduce((n, m) => n + m.size, 0);
    if (mbox.lastLogin === undefined) continue;
    report.accountsAll++;
    if (isCi(mbox.name)) report.accountsCi++;
    else
      for (const d of LOGIN_BUCKET_DAYS) if (mbox.lastLogin >= now - d * 86400) report.activeWithinDays[d]++;
    if (mbox.lastLogin > now - (opts.minLoginAgeDays ?? 0) * 86400) continue;
    for (const m of mbox.messages) {
      if (opts.mdir && !m.path.includes(`/${opts.mdir}/`)) continue;
      for (const t of SIZE_THRESHOLDS) {
        if (m.size >= t) {
          report.bytesAtLeast[t] += m.size;
          report.countAtLeast[t]++;
        }
      }
    }
  }
  return report;
}

/** Prometheus exposition text (node-exporter textfile collector). */
export function prometheusText(r: Report): string {
  const lines = [
    "# HELP chatmail_storage_bytes Mailbox storage in bytes.",
    "# TYPE chatmail_storage_bytes gauge",
    `chatmail_storage_bytes{kind="messages"} ${r.sizeMessages}`,
    `chatmail_storage_bytes{kind="extra"} ${r.sizeExtra}`,
    `chatmail_storage_bytes{kind="total"} ${r.sizeMessages + r.sizeExtra}`,
    "# HELP chatmail_messages_bytes Sum of msg bytes >= threshold.",
    "# TYPE chatmail_messages_bytes gauge",
    ...SIZE_THRESHOLDS.map((t) => `chatmail_messages_bytes{min_size="${t}"} ${r.bytesAtLeast[t]}`),
    "# HELP chatmail_messages_count Number of msgs >= size threshold.",
    "# TYPE chatmail_messages_count gauge",
    ...SIZE_THRESHOLDS.map((t) => `chatmail_messages_count{min_size="${t}"} ${r.countAtLeast[t]}`),
    "# HELP chatmail_accounts Accounts with a password.",
    "# TYPE chatmail_accounts gauge",
    `chatmail_accounts{kind="all"} ${r.accountsAll}`,
    `chatmail_accounts{kind="ci"} ${r.accountsCi}`,
    `chatmail_accounts{kind="user"} ${r.accountsAll - r.accountsCi}`,
    "# HELP chatmail_accounts_active Non-CI accounts active within N days.",
    "# TYPE chatmail_accounts_active gauge",
    ...LOGIN_BUCKET_DAYS.map((d) => `chatmail_accounts_active{days="${d}"} ${r.activeWithinDays[d]}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** The metrics file older relays published on their website. */
export function legacyMetricsText(r: Report): string {
  return [
    "# HELP total number of accounts",
    "# TYPE accounts gauge",
    `accounts ${r.accountsAll}`,
    "# HELP number of CI accounts",
    "# TYPE ci_accounts gauge",
    `ci_accounts ${r.accountsCi}`,
    "# HELP number of non-CI accounts",
    "# TYPE nonci_accounts gauge",
    `nonci_accounts ${r.accountsAll - r.accountsCi}`,
    "",
  ].join("\n");
}

/** Sizes for people: 9.99K, 999K, 999M, 9.99G. */
export function humanSize(n: number): string {
  if (n < 10_000) return `${(n / 1000).toFixed(2).padStart(5)}K`;
  if (n < 1e6) return `${(n / 1000).toFixed(0).padStart(5)}K`;
  if (n < 1e9) return `${String(Math.trunc(n / 1e6)).padStart(5)}M`;
  return `${(n / 1e9).toFixed(2).padStart(5)}G`;
}

export function summaryText(r: Report): string {
  const lines = [
    `accounts: ${r.accountsAll} (${r.accountsCi} CI)`,
    `storage: messages ${humanSize(r.sizeMessages)}, other files ${humanSize(r.sizeExtra)}`,
    ...LOGIN_BUCKET_DAYS.map((d) => `active within ${String(d).padStart(3)} days: ${r.activeWithinDays[d]}`),
    ...SIZE_THRESHOLDS.map(
      (t) => `messages >= ${humanSize(t)}: ${r.countAtLeast[t]} (${humanSize(r.bytesAtLeast[t])})`,
    ),
  ];
  return `${lines.join("\n")}\n`;
}

/** Writes `text` to `path` atomically with mode 0644 (the web server or exporter reads it). */
export async function writePublic(path: string, text: string): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text);
  await chmod(tmp, 0o644);
  await rename(tmp, path);
}
