// One account on disk, in the layout of existing relays (docs/daemons.md, 'Accounts on disk'; upstream:
// chatmail/relay 1.12.0, chatmaild/src/chatmaild/user.py): <mailboxesDir>/<addr>/ holds the
// `password` hash ({PBKDF2} for accounts we create, {SHA512-CRYPT} from existing relays; its existence is the account, its mtime the last login day) and the empty `enforceE2EEincoming`
// marker. Every path is built here from a checked address, so no daemon can be steered
// outside mailboxesDir by `..`, `/` or NUL in an address.
import { randomInt } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { readdir, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../dictproxy/log";
import { VMAIL_USER } from "../../core/server";

export class InvalidAddressError extends Error {}

/** Throws InvalidAddressError unless `addr` can name a directory inside mailboxesDir. */
export function requireAddress(addr: string | undefined): string {
  if (!addr || !addr.includes("@") || /[/\0]/.test(addr) || addr === "." || addr === "..") {
    throw new InvalidAddressError(`invalid address ${JSON.stringify(addr ?? null)}`);
  }
  return addr;
}

export interface Account {
  readonly addr: string;
  /** Dovecot's home and Maildir root. */
  readonly maildir: string;
  readonly passwordPath: string;
  /** Present: incoming cleartext mail is refused (filtermail incoming reads it). */
  readonly enforceE2EEPath: string;
}

export function accountFor(mailboxesDir: string, addr: string): Account {
  const maildir = join(mailboxesDir, requireAddress(addr));
  return {
    addr,
    maildir,
    passwordPath: join(maildir, "password"),
    enforceE2EEPath: join(maildir, "enforceE2EEincoming"),
  };
}

/** Scratch for readSmall: one buffer for the whole process, since reads are synchronous. */
const SMALL_READ = Buffer.alloc(4096);

/** A small file's content: open, read, close (readFileSync adds an fstat per call). */
function readSmall(path: string): string {
  const fd = openSync(path, "r");
  try {
    const n = readSync(fd, SMALL_READ, 0, SMALL_READ.length, 0);
    return n < SMALL_READ.length ? SMALL_READ.toString("latin1", 0, n) : readFileSync(path, "latin1");
  } finally {
    closeSync(fd);
  }
}

/**
 * The stored hash, or undefined when there is no account. An empty file counts as none and is logged.
 * Synchronous on purpose: this is every login's hot path, the file is ~120 bytes in the page cache, and a
 * blocking read takes microseconds where the thread-pool round trips of fs.promises.readFile took ten times longer.
 */
export function readPasswordHash(account: Account, log: Logger): string | undefined {
  let text: string;
  try {
    text = readSmall(account.passwordPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR")
      return undefined;
    throw err;
  }
  if (text.trim() === "") {
    log.error(`password is empty for: ${account.addr}`);
    return undefined;
  }
  return text;
}

/** The passdb/userdb reply fields, in upstream's key order; mail processes run as `mailUser`. */
export function userdbRecord(
  account: Account,
  passwordHash: string,
  mailUser = VMAIL_USER,
): Record<string, string> {
  return { addr: account.addr, home: account.maildir, uid: mailUser, gid: mailUser, password: passwordHash };
}

/** Writes via a temporary sibling and rename, so readers see the old or the new content, never a part. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${randomInt(0, 10_000_000)}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Stores a hash (creating the maildir) and marks the account as refusing incoming cleartext. Synchronous: these
 * small metadata operations cost far less CPU done directly than as fs.promises round trips through the thread
 * pool. The hash goes via a temporary file and rename, so a crash never leaves a partial hash that locks the
 * account out; the marker comes first, so an account never exists without it.
 */
export function setPassword(account: Account, passwordHash: string): void {
  try {
    mkdirSync(account.maildir);
  } catch (err) {
    // EEXIST: a directory left by an expired or failed account; ENOENT: mailboxesDir itself is missing.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") mkdirSync(account.maildir, { recursive: true });
    else if (code !== "EEXIST") throw err;
  }
  closeSync(openSync(account.enforceE2EEPath, "a"));
  const tmp = `${account.passwordPath}.tmp-${randomInt(0, 10_000_000)}`;
  try {
    writeFileSync(tmp, passwordHash, "latin1");
    renameSync(tmp, account.passwordPath);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Last login with day precision: the password file's mtime set to the UTC midnight of `ts`, at most once a day. */
export async function setLastLogin(account: Account, ts: number, log: Logger): Promise<void> {
  let mtime: number;
  try {
    mtime = Math.trunc((await stat(account.passwordPath)).mtimeMs / 1000);
  } catch {
    log.warn(`Can not get last login timestamp for ${account.addr}`);
    return;
  }
  const day = Math.floor(ts / 86400) * 86400;
  if (mtime !== day) await utimes(account.passwordPath, day, day);
}

export async function getLastLogin(account: Account): Promise<number | undefined> {
  try {
    return Math.trunc((await stat(account.passwordPath)).mtimeMs / 1000);
  } catch {
    return undefined;
  }
}

/** Every directory name in mailboxesDir that looks like an address (Dovecot's userdb iteration). */
export async function listAddresses(mailboxesDir: string): Promise<string[]> {
  try {
    return (await readdir(mailboxesDir)).filter((name) => name.includes("@")).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
