// doveauth: Dovecot's passdb and userdb over the dict protocol, creating an address at its first login
// (docs/daemons.md, 'Account creation at first login'; upstream: chatmail/relay 1.12.0,
// chatmaild/src/chatmaild/doveauth.py). Dovecot sends `Lshared/passdb/<password>"<user>"<client IP>` and
// `Lshared/userdb/<user>`; an existing account answers with its stored hash and Dovecot compares the password
// itself, so a wrong password can never overwrite anything. The core (lookupPassdb/lookupUserdb) is kept apart
// from the socket so it can also sit behind Dovecot 2.4's Lua/HTTP auth later.
import { existsSync } from "node:fs";
import { DOVEAUTH_SOCKET, NOCREATE_FILE } from "../../core/server";
import type { DaemonConfig } from "../config";
import { found, NOT_FOUND, pythonJson, type LookupResult } from "../dictproxy/protocol";
import { startDictServer } from "../dictproxy/server";
import { createLogger, type Logger } from "../dictproxy/log";
import { METRICS, type RefusalReason, type RelayMetrics } from "../metrics/relay";
import type { Service } from "../service";
import { CreationLimiter } from "./creationlimit";
import { boundedHasher, HashQueueFullError, type PasswordHasher } from "./hasher";
import { AccountRecords } from "./records";
import { creationCheck } from "./rules";
import { resourceCheck, type LimitsConfig, type Shortage } from "./syslimits";
import { accountFor, InvalidAddressError, listAddresses, setPassword, userdbRecord } from "./user";

/** How long one reading of load, memory and free disk decides about account creation. */
export const RESOURCE_CHECK_MS = 1000;

export interface DoveauthOptions {
  socketPath?: string;
  nocreateFile?: string;
  hasher?: PasswordHasher;
  log?: Logger;
  socketMode?: number;
  /** uid/gid Dovecot runs mail processes as (default vmail; the Dovecot test uses nobody's number). */
  mailUser?: string;
  /** The clock of the creation limits and of the kept answers (records.ts), in ms (tests). */
  now?: () => number;
  /** The metrics to move (default: the process's own). */
  metrics?: RelayMetrics;
}

export class KeyFormatError extends Error {}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/**
 * Splits a key part on unescaped `"` and removes `\` escapes: Dovecot's %E escapes `"`, `'` and `\` in
 * `passdb/%Ew"%Eu`. A lone trailing backslash is malformed.
 */
export function splitAndUnescape(text: string): string[] {
  // Copies runs between special characters as slices: a key holds a password of up to passwordMaxLength
  // characters, and a string built one character at a time made long keys cost far more memory than their size.
  const fields: string[] = [];
  let current = "";
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      if (i + 1 >= text.length) throw new KeyFormatError("lone trailing backslash in key");
      current += text.slice(start, i) + text[i + 1];
      start = ++i + 1;
    } else if (c === QUOTE) {
      fields.push(current + text.slice(start, i));
      current = "";
      start = i + 1;
    }
  }
  fields.push(current + text.slice(start));
  return fields;
}

/**
 * What a doveauth key asks for: Dovecot sends `shared/userdb/<user>` and `shared/passdb/<password>"<user>"<rip>`,
 * the client's IP address last (empty when there is none); keys without it, from an older auth.conf, still work.
 */
export type AuthLookup =
  | { type: "userdb"; user: string }
  | { type: "passdb"; user: string; password: string; client: string | undefined };

/**
 * The lookup a dict key asks for, or undefined for a key doveauth does not serve (answered F, not logged).
 * A malformed key throws KeyFormatError with the line to log.
 */
export function parseAuthKey(key: string): AuthLookup | undefined {
  const slash1 = key.indexOf("/");
  const slash2 = key.indexOf("/", slash1 + 1);
  if (slash1 === -1 || slash2 === -1)
    throw new KeyFormatError(`lookup key without namespace/type/args: ${key.length} bytes`);
  const namespace = key.slice(0, slash1);
  const type = key.slice(slash1 + 1, slash2);
  if (namespace !== "shared" || (type !== "userdb" && type !== "passdb")) return undefined;
  let args: string[];
  try {
    args = splitAndUnescape(key.slice(slash2 + 1));
  } catch (err) {
    throw new KeyFormatError(`${(err as Error).message} (${type} lookup)`);
  }
  const user = type === "userdb" ? args[0] : args[1];
  if (user === undefined) throw new KeyFormatError(`${type} lookup without a user`);
  return type === "userdb" ? { type, user } : { type, user, password: args[0], client: args[2] || undefined };
}

/** The dict answer for an account record: its JSON, or not found. */
function recordReply(record: Record<string, string> | undefined): LookupResult {
  return record ? found(pythonJson(record)) : NOT_FOUND;
}

/** Load, memory and disk change slowly: a burst of first logins shares one reading per RESOURCE_CHECK_MS. */
class ResourceCheck {
  private last: { at: number; shortage: Promise<Shortage | undefined> } | undefined;

  constructor(
    private readonly config: LimitsConfig,
    private readonly log: Logger,
  ) {}

  shortage(): Promise<Shortage | undefined> {
    const now = Date.now();
    if (!this.last || now - this.last.at >= RESOURCE_CHECK_MS) {
      this.last = { at: now, shortage: resourceCheck(this.config, this.log) };
    }
    return this.last.shortage;
  }
}

/**
 * Creation must wait (rate limit, full hashing queue): the lookup fails, which Dovecot makes temporary. Both count
 * as refusals for the reason rate_limit: too many creations at once.
 */
export class TryLaterError extends Error {}

/** Dovecot's passdb and userdb, apart from the socket: account records, and creation at the first login. */
export class Doveauth {
  private readonly log: Logger;
  private readonly hasher: PasswordHasher;
  private readonly nocreatePath: string;
  private readonly domainSuffix: string;
  private readonly resources: ResourceCheck;
  private readonly limiter: CreationLimiter;
  private readonly metrics: RelayMetrics;
  private readonly records: AccountRecords;
  private readonly loginOk: { inc(): void };
  private readonly loginFailed: { inc(): void };
  /**
   * Creations under way, per address. A lookup of an address without account joins the one under way, so
   * concurrent first logins end with exactly one hash and one counted creation. The entry is added in the same
   * synchronous step as the check that the account is missing, and stays until the file is written.
   */
  private readonly creations = new Map<string, Promise<Record<string, string> | undefined>>();

  constructor(
    private readonly config: DaemonConfig,
    private readonly opts: DoveauthOptions = {},
  ) {
    this.log = opts.log ?? createLogger("doveauth");
    this.hasher = opts.hasher ?? boundedHasher();
    this.nocreatePath = opts.nocreateFile ?? NOCREATE_FILE;
    this.domainSuffix = `@${config.mailDomain}`;
    this.resources = new ResourceCheck(config, this.log);
    this.limiter = new CreationLimiter(config, opts.now);
    this.metrics = opts.metrics ?? METRICS;
    this.records = new AccountRecords(config.mailboxesDir, opts.mailUser, this.log, opts.now);
    this.loginOk = this.metrics.logins.handle({ result: "ok" });
    this.loginFailed = this.metrics.logins.handle({ result: "failed" });
  }

  async lookupUserdb(addr: string): Promise<Record<string, string> | undefined> {
    return this.records.get(addr)?.record;
  }

  /**
   * The account's record; creates it first when the rules and limits allow. Undefined: no such account (N).
   * `client` is the remote IP Dovecot passes, for the per-client limit. Throws TryLaterError when creation must wait.
   */
  async lookupPassdb(
    addr: string,
    password: string,
    client?: string,
  ): Promise<Record<string, string> | undefined> {
    return this.records.get(addr)?.record ?? this.createOnce(addr, password, client);
  }

  /** The dict lookup handler: parses the key and formats the reply (synchronous unless it creates). */
  handleLookup(key: string): LookupResult | Promise<LookupResult> {
    let lookup: AuthLookup | undefined;
    try {
      lookup = parseAuthKey(key);
    } catch (err) {
      if (!(err instanceof KeyFormatError)) throw err;
      this.log.warn(err.message);
      // A malformed passdb key is a login that cannot succeed.
      if (key.startsWith("shared/passdb/")) this.countLogin(false);
      return "fail";
    }
    if (!lookup) return "fail";
    const passdb = lookup.type === "passdb";
    // Only our own domain has accounts here; anything else is simply unknown.
    if (!lookup.user.endsWith(this.domainSuffix)) return this.counted(passdb, NOT_FOUND);
    try {
      const existing = this.records.get(lookup.user);
      if (existing) return this.counted(passdb, existing.reply);
      // Only a passdb lookup of an address without account goes on to creation, which is asynchronous.
      if (lookup.type === "userdb") return NOT_FOUND;
      return this.createOnce(lookup.user, lookup.password, lookup.client).then(
        (created) => this.counted(true, recordReply(created)),
        (err) => this.counted(true, this.failure(err)),
      );
    } catch (err) {
      // An address that names no mailbox: for a passdb lookup, a creation refused as invalid.
      if (passdb && err instanceof InvalidAddressError) this.refused("invalid");
      return this.counted(passdb, this.failure(err));
    }
  }

  /** A passdb lookup's answer counts as a login: ok when an account was found or made. */
  private counted(passdb: boolean, result: LookupResult): LookupResult {
    if (passdb) this.countLogin(typeof result === "object" && result.found);
    return result;
  }

  private countLogin(ok: boolean): void {
    (ok ? this.loginOk : this.loginFailed).inc();
  }

  private refused(reason: RefusalReason): void {
    this.metrics.creationRefusals.inc({ reason });
  }

  listUsers(): Promise<string[]> {
    return listAddresses(this.config.mailboxesDir);
  }

  /** Joins the creation of `addr` under way, or starts one; call only when the account does not exist. */
  private createOnce(
    addr: string,
    password: string,
    client: string | undefined,
  ): Promise<Record<string, string> | undefined> {
    const running = this.creations.get(addr);
    if (running) return running;
    const creation = this.create(addr, password, client).finally(() => this.creations.delete(addr));
    this.creations.set(addr, creation);
    return creation;
  }

  private async create(
    addr: string,
    password: string,
    client: string | undefined,
  ): Promise<Record<string, string> | undefined> {
    const account = accountFor(this.config.mailboxesDir, addr);
    const refusal = creationCheck(this.config, addr, password, {
      exists: existsSync(this.nocreatePath),
      path: this.nocreatePath,
    });
    if (refusal) {
      this.log.warn(refusal.message);
      this.refused(refusal.reason);
      return undefined;
    }
    const shortage = await this.resources.shortage();
    if (shortage) {
      this.log.warn(`registration rejected: ${shortage.message}`);
      this.refused(shortage.reason);
      return undefined;
    }
    // Counted last, so that only creations that go ahead use up the limits.
    const limited = this.limiter.take(client);
    if (limited) {
      this.refused("rate_limit");
      throw new TryLaterError(`registration delayed: ${limited}`);
    }
    let hash: string;
    try {
      hash = await this.hasher.hash(password);
    } catch (err) {
      if (err instanceof HashQueueFullError) {
        this.refused("rate_limit");
        throw new TryLaterError(`registration delayed: ${err.message}`);
      }
      throw err;
    }
    setPassword(account, hash);
    this.metrics.accountCreations.inc({ via: "login" });
    this.log.info(`Created address: ${addr}`);
    return userdbRecord(account, hash, this.opts.mailUser);
  }

  /** An address that cannot name a mailbox is unknown (logged); creation that must wait fails; others go on. */
  private failure(err: unknown): LookupResult {
    if (err instanceof TryLaterError) {
      this.log.warn(err.message);
      return "fail";
    }
    if (!(err instanceof InvalidAddressError)) throw err;
    this.log.warn(err.message);
    return NOT_FOUND;
  }
}

/** Starts the doveauth dict server. */
export async function startDoveauth(config: DaemonConfig, opts: DoveauthOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger("doveauth");
  const doveauth = new Doveauth(config, { ...opts, log });
  const server = await startDictServer({
    socketPath: opts.socketPath ?? DOVEAUTH_SOCKET,
    socketMode: opts.socketMode,
    log,
    handlers: {
      lookup: (key) => doveauth.handleLookup(key),
      async iterate(path) {
        // Dovecot's userdb iteration (doveadm -A, quota recalculation): every address directory, empty values.
        if (path !== "shared/userdb/") return [];
        return (await doveauth.listUsers()).map((addr) => [`shared/userdb/${addr}`, ""] as const);
      },
    },
  });
  return {
    async close() {
      await server.close();
    },
  };
}
