// The daily expiry job (docs/daemons.md, 'Expiry and reports'; upstream chatmail-expire: chatmail/relay 1.12.0,
// chatmaild/src/chatmaild/expire.py): deletes inactive accounts, old mail, large old mail that was seen, trims
// each mailbox oldest-first to 70% of maxMailboxSize, removes empty mailbox directories, and drops maildirsize
// where anything changed so Dovecot recounts the quota. With dryRun nothing at all changes (upstream's quota trim
// ignored its dry run; we do not).
import { readdir, rm, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { parseSizeMb, type DaemonConfig } from "../config";
import { listMailboxDirs, statMailbox, type MailboxStat } from "./mailbox";

/** "Large" messages, deleted earlier (deleteLargeAfter), are bigger than this many bytes. */
export const LARGE_MESSAGE_BYTES = 200_000;
/** Quota trimming keeps messages delivered within this many seconds: a quota-full signal still reaches the owner. */
export const PROTECT_RECENT_S = 24 * 3600;
/** The daily trim target, as a fraction of maxMailboxSize (Dovecot's quota warning triggers at 75%). */
export const TRIM_TARGET_FRACTION = 0.7;

export type ExpireConfig = Pick<
  DaemonConfig,
  "mailboxesDir" | "deleteMailsAfter" | "deleteLargeAfter" | "deleteInactiveUsersAfter" | "maxMailboxSize"
>;

export interface ExpireOptions {
  dryRun: boolean;
  /** Seconds since the epoch. */
  now?: number;
  maxnum?: number;
  /** Receives "removing ..." lines and the summary. */
  out?: (line: string) => void;
}

export interface ExpireSummary {
  allMailboxes: number;
  deletedMailboxes: number;
  allFiles: number;
  deletedFiles: number;
}

/** Delivery time and quota size from a Dovecot maildir file name like `1775324677.M44P30.host,S=3235,W=3305:2,S`. */
export function parseDovecotFilename(path: string): { mtime: number; quotaSize: number } | undefined {
  const m = /(?:^|\/)(\d+)\.[^/]*,S=(\d+)/.exec(path);
  return m ? { mtime: Number(m[1]), quotaSize: Number(m[2]) } : undefined;
}

/**
 * Deletes the oldest messages of cur/ and new/ until their quota sizes (the `S=` field) sum to at most
 * targetBytes, never touching messages younger than PROTECT_RECENT_S. Returns the paths removed (or that would be).
 */
export async function expireToTarget(
  mailbox: string,
  targetBytes: number,
  now: number,
  dryRun: boolean,
): Promise<string[]> {
  const found: Array<{ path: string; mtime: number; quotaSize: number }> = [];
  for (const sub of ["cur", "new"]) {
    let names: string[] = [];
    try {
      names = await readdir(join(mailbox, sub));
    } catch {
      continue;
    }
    for (const name of names) {
      const parsed = parseDovecotFilename(`${sub}/${name}`);
      if (parsed) found.push({ path: join(mailbox, sub, name), ...parsed });
    }
  }
  found.sort((a, b) => a.mtime - b.mtime || a.quotaSize - b.quotaSize || (a.path < b.path ? -1 : 1));
  let total = found.reduce((n, f) => n + f.quotaSize, 0);
  const removed: string[] = [];
  for (const f of found) {
    if (total <= targetBytes || f.mtime > now - PROTECT_RECENT_S) break;
    if (!dryRun) await unlink(f.path).catch(() => {});
    removed.push(f.path);
    total -= f.quotaSize;
  }
  return removed;
}

function day(ts: number): string {
  return new Date(ts * 1000).toLocaleString("en-US", { month: "short", day: "2-digit", timeZone: "UTC" });
}

async function processMailbox(
  config: ExpireConfig,
  mbox: MailboxStat,
  opts: ExpireOptions,
  now: number,
  summary: ExpireSummary,
): Promise<void> {
  const out = opts.out ?? (() => {});
  summary.allMailboxes++;
  summary.allFiles += mbox.messages.length;
  if (mbox.lastLogin !== undefined && mbox.lastLogin < now - config.deleteInactiveUsersAfter * 86400) {
    out(`removing inactive mailbox ${mbox.dir}`);
    if (!opts.dryRun) await rm(mbox.dir, { recursive: true, force: true });
    summary.deletedMailboxes++;
    return;
  }
  if (mbox.lastLogin === undefined) {
    // No password: not an account (yet). Only an empty directory goes.
    if (!opts.dryRun) {
      await rmdir(mbox.dir).catch(() =>
        out(`Skipped deleting ${mbox.dir}, doesn't have last_login but isn't empty`),
      );
    }
    return;
  }
  let changed = false;
  const removedPaths = new Set<string>();
  const remove = async (path: string, mtime: number): Promise<void> => {
    out(`removing ${day(mtime)} ${path}`);
    removedPaths.add(path);
    changed = true;
    summary.deletedFiles++;
    if (opts.dryRun) return;
    await unlink(path).catch(() => out(`file not found/vanished ${path}`));
  };
  for (const msg of mbox.messages) {
    if (msg.mtime < now - config.deleteMailsAfter * 86400) await remove(msg.path, msg.mtime);
    // Large mail goes early only once seen (cur/); unseen mail in new/ waits for the normal expiry.
    else if (
      msg.size > LARGE_MESSAGE_BYTES &&
      msg.mtime < now - config.deleteLargeAfter * 86400 &&
      msg.path.split("/").at(-2) === "cur"
    ) {
      await remove(msg.path, msg.mtime);
    }
  }
  const target = parseSizeMb(config.maxMailboxSize) * 1024 * 1024 * TRIM_TARGET_FRACTION;
  for (const path of await expireToTarget(mbox.dir, target, now, opts.dryRun)) {
    if (removedPaths.has(path)) continue; // a dry run still sees files the age rules would have removed
    out(`removing (quota) ${path}`);
    changed = true;
    summary.deletedFiles++;
  }
  if (changed) {
    out(`removing ${join(mbox.dir, "maildirsize")}`);
    if (!opts.dryRun) await unlink(join(mbox.dir, "maildirsize")).catch(() => {});
  }
}

/** Runs the expiry over every mailbox. The summary line is also written to `out`. */
export async function runExpire(config: ExpireConfig, opts: ExpireOptions): Promise<ExpireSummary> {
  const started = Date.now();
  const now = opts.now ?? Date.now() / 1000;
  const summary: ExpireSummary = { allMailboxes: 0, deletedMailboxes: 0, allFiles: 0, deletedFiles: 0 };
  const dirs = await listMailboxDirs(config.mailboxesDir, opts.maxnum);
  if (dirs === undefined) {
    process.stderr.write(`no mailboxes found at: ${config.mailboxesDir}\n`);
    return summary;
  }
  for (const dir of dirs) await processMailbox(config, await statMailbox(dir), opts, now, summary);
  const secs = ((Date.now() - started) / 1000).toFixed(2);
  (opts.out ?? (() => {}))(
    `${opts.dryRun ? "[dry run] would have removed" : "Removed"} ${summary.deletedMailboxes} out of ${summary.allMailboxes} mailboxes and ${summary.deletedFiles} out of ${summary.allFiles} files in existing mailboxes in ${secs} seconds`,
  );
  return summary;
}

/** Dovecot's quota-warning hook (upstream chatmail-quota-expire): trims one mailbox to targetMb now. */
export async function quotaExpire(
  targetMb: number,
  mailbox: string,
  now = Date.now() / 1000,
): Promise<number> {
  const removed = await expireToTarget(mailbox, targetMb * 1024 * 1024, now, false);
  if (removed.length > 0) {
    await unlink(join(mailbox, "maildirsize")).catch(() => {});
    process.stderr.write(
      `quota-expire: removed ${removed.length} message(s) from ${mailbox.split("/").pop()}\n`,
    );
  }
  return removed.length;
}
