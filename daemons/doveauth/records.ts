// The passdb/userdb answers for existing accounts, kept between lookups: every login asks for one (Dovecot has no
// auth cache configured), usually twice (passdb, then userdb). A kept answer is reused while the password file's
// inode, size, mtime and ctime are unchanged; one stat checks that, at most once per REVALIDATE_MS for each
// account. So a new password (written via rename: a new inode), a touched file or a removed account is seen within
// a second, like a Dovecot auth cache with a one-second TTL that is checked against the file rather than dropped.
// Accounts doveauth creates itself are never kept before they exist, so a first login is never refused by this.
//
// Why a window rather than a stat at every lookup: the stat is one system call, and on a VM one costs as much as
// the socket's read or write: `npm run bench -- auth`, 16 connections, CPU per lookup against the dict server
// answering a constant in the same run: reading the file each time 0.0178 ms against 0.0071; one stat per lookup
// 0.0131 against 0.0103 (of which 2.5 µs the stat, from a CPU profile); see docs/benchmarks.md for the figures
// with the window. A login's userdb lookup follows its passdb lookup within milliseconds, so on a relay the window
// spares at least every second stat; the bench, which asks for 64 accounts over and over, shows the best case,
// and its row for more accounts than are kept shows the worst.
//
// File times have the kernel's coarse clock (a tick of a few ms), so a same-size rewrite in place within the tick
// of the read could keep all four values. As git does for its index ("racy clean" entries), a file changed less
// than RACY_MS before the read is not kept: any later change then falls in a later tick and moves the ctime.
import { statSync, type Stats } from "node:fs";
import type { Logger } from "../dictproxy/log";
import { foundReusable, pythonJson, type LookupResult } from "../dictproxy/protocol";
import { accountFor, readPasswordHash, userdbRecord, type Account } from "./user";

/**
 * Accounts whose answer is kept (~1.3 KB each); beyond it the one kept longest goes. A lookup of an account not
 * kept costs one stat more than reading the file alone.
 */
export const MAX_KEPT_ACCOUNTS = 1024;
/** A file changed this recently is read again at every lookup (see the header). */
export const RACY_MS = 1000;
/** How long a kept answer is reused without looking at the file; the longest a change outside doveauth goes unseen. */
export const REVALIDATE_MS = 1000;

/** An existing account's answer: its record and the dict reply made of it. */
export interface AccountAnswer {
  readonly record: Record<string, string>;
  readonly reply: LookupResult;
}

interface Kept extends AccountAnswer {
  readonly account: Account;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  /** When a stat last found the file unchanged (the clock of `now`). */
  checkedAt: number;
}

export class AccountRecords {
  private readonly kept = new Map<string, Kept>();

  constructor(
    private readonly mailboxesDir: string,
    private readonly mailUser: string | undefined,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly max = MAX_KEPT_ACCOUNTS,
  ) {}

  /** The account's answer, or undefined when it has none; throws InvalidAddressError for a bad address. */
  get(addr: string): AccountAnswer | undefined {
    const kept = this.kept.get(addr);
    const now = this.now();
    if (kept && now - kept.checkedAt < REVALIDATE_MS) return kept;
    const account = kept?.account ?? accountFor(this.mailboxesDir, addr);
    const stat = statPassword(account.passwordPath);
    if (kept && stat && sameFile(kept, stat)) {
      kept.checkedAt = now;
      return kept;
    }
    if (kept) this.kept.delete(addr);
    if (!stat) return undefined;
    // The stat comes before the read: content newer than it shows as a changed file at the next lookup.
    const hash = readPasswordHash(account, this.log);
    if (hash === undefined) return undefined;
    const record = userdbRecord(account, hash, this.mailUser);
    const { ino, size, mtimeMs, ctimeMs } = stat;
    const reply = foundReusable(pythonJson(record));
    const answer = { record, reply, account, ino, size, mtimeMs, ctimeMs, checkedAt: now };
    if (now - ctimeMs >= RACY_MS) this.keep(addr, answer);
    return answer;
  }

  /** Answers kept; for tests. */
  get size(): number {
    return this.kept.size;
  }

  private keep(addr: string, answer: Kept): void {
    if (this.kept.size >= this.max) this.kept.delete(this.kept.keys().next().value as string);
    this.kept.set(addr, answer);
  }
}

function sameFile(kept: Kept, stat: Stats): boolean {
  return (
    kept.ino === stat.ino &&
    kept.size === stat.size &&
    kept.mtimeMs === stat.mtimeMs &&
    kept.ctimeMs === stat.ctimeMs
  );
}

const NO_THROW_IF_MISSING = { throwIfNoEntry: false } as const;

/** The password file's stat, or undefined when there is none (ENOTDIR: a file where the maildir should be). */
function statPassword(path: string): Stats | undefined {
  try {
    return statSync(path, NO_THROW_IF_MISSING);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw err;
  }
}
