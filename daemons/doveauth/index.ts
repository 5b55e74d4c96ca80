// doveauth: Dovecot's passdb and userdb over the dict protocol, creating an address at its first login
// (docs/daemons.md, 'Account creation at first login'; upstream: chatmail/relay 1.12.0,
// chatmaild/src/chatmaild/doveauth.py). Dovecot sends `Lshared/passdb/<password>"<user>` and
// `Lshared/userdb/<user>`; an existing account answers with its stored hash and Dovecot compares the password
// itself, so a wrong password can never overwrite anything. The core (lookupPassdb/lookupUserdb) is kept apart
// from the socket so it can also sit behind Dovecot 2.4's Lua/HTTP auth later.
import { existsSync } from "node:fs";
import { DOVEAUTH_SOCKET, NOCREATE_FILE } from "../../core/server";
import type { DaemonConfig } from "../config";
import { found, NOT_FOUND, pythonJson, type LookupResult } from "../dictproxy/protocol";
import { startDictServer } from "../dictproxy/server";
import { createLogger, type Logger } from "../dictproxy/log";
import { KeyedLock } from "../lock";
import type { Service } from "../service";
import { inlineHasher, type PasswordHasher } from "./hashpool";
import { creationRefusal } from "./rules";
import { resourceShortage, type LimitsConfig } from "./syslimits";
import {
  accountFor,
  InvalidAddressError,
  listAddresses,
  readPasswordHash,
  setPassword,
  userdbRecord,
} from "./user";

/** How long one reading of load, memory and free disk decides about account creation. */
export const RESOURCE_CHECK_MS = 1000;

/** Dovecot's password scheme prefix; existing relays store it in the file. */
export const PASSWORD_SCHEME_PREFIX = "{SHA512-CRYPT}";

export interface DoveauthOptions {
  socketPath?: string;
  nocreateFile?: string;
  hasher?: PasswordHasher;
  log?: Logger;
  socketMode?: number;
  /** uid/gid Dovecot runs mail processes as (default vmail; the Dovecot test uses nobody's number). */
  mailUser?: string;
}

export class KeyFormatError extends Error {}

/**
 * Splits a key part on unescaped `"` and removes `\` escapes: Dovecot's %E escapes `"`, `'` and `\` in
 * `passdb/%Ew"%Eu`. A lone trailing backslash is malformed.
 */
export function splitAndUnescape(text: string): string[] {
  const fields: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "\\") {
      if (i + 1 >= text.length) throw new KeyFormatError("lone trailing backslash in key");
      current += text[++i];
    } else if (c === '"') {
      fields.push(current);
      current = "";
    } else current += c;
  }
  fields.push(current);
  return fields;
}

/** What a doveauth key asks for: Dovecot sends `shared/userdb/<user>` and `shared/passdb/<password>"<user>`. */
export type AuthLookup =
  { type: "userdb"; user: string } | { type: "passdb"; user: string; password: string };

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
  return type === "userdb" ? { type, user } : { type, user, password: args[0] };
}

/** The dict answer for an account record: its JSON, or not found. */
function recordReply(record: Record<string, string> | undefined): LookupResult {
  return record ? found(pythonJson(record)) : NOT_FOUND;
}

/** Load, memory and disk change slowly: a burst of first logins shares one reading per RESOURCE_CHECK_MS. */
class ResourceCheck {
  private last: { at: number; shortage: Promise<string | undefined> } | undefined;

  constructor(
    private readonly config: LimitsConfig,
    private readonly log: Logger,
  ) {}

  shortage(): Promise<string | undefined> {
    const now = Date.now();
    if (!this.last || now - this.last.at >= RESOURCE_CHECK_MS) {
      this.last = { at: now, shortage: resourceShortage(this.config, this.log) };
    }
    return this.last.shortage;
  }
}

/** Dovecot's passdb and userdb, apart from the socket: account records, and creation at the first login. */
export class Doveauth {
  private readonly log: Logger;
  private readonly hasher: PasswordHasher;
  private readonly nocreatePath: string;
  private readonly domainSuffix: string;
  private readonly resources: ResourceCheck;
  /** Same-address creations queue here, so concurrent first logins end with exactly one hash. */
  private readonly creations = new KeyedLock();

  constructor(
    private readonly config: DaemonConfig,
    private readonly opts: DoveauthOptions = {},
  ) {
    this.log = opts.log ?? createLogger("doveauth");
    this.hasher = opts.hasher ?? inlineHasher();
    this.nocreatePath = opts.nocreateFile ?? NOCREATE_FILE;
    this.domainSuffix = `@${config.mailDomain}`;
    this.resources = new ResourceCheck(config, this.log);
  }

  async lookupUserdb(addr: string): Promise<Record<string, string> | undefined> {
    return this.existingRecord(addr);
  }

  /** The account's record; creates it first when the rules allow. Undefined: no such account (N). */
  async lookupPassdb(addr: string, password: string): Promise<Record<string, string> | undefined> {
    const existing = await this.lookupUserdb(addr);
    if (existing) return existing;
    const refusal = creationRefusal(this.config, addr, password, {
      exists: existsSync(this.nocreatePath),
      path: this.nocreatePath,
    });
    if (refusal) {
      this.log.warn(refusal);
      return undefined;
    }
    const shortage = await this.resources.shortage();
    if (shortage) {
      this.log.warn(`registration rejected: ${shortage}`);
      return undefined;
    }
    return this.creations.run(addr, () => this.create(addr, password));
  }

  /** The dict lookup handler: parses the key and formats the reply (synchronous unless it creates). */
  handleLookup(key: string): LookupResult | Promise<LookupResult> {
    let lookup: AuthLookup | undefined;
    try {
      lookup = parseAuthKey(key);
    } catch (err) {
      if (!(err instanceof KeyFormatError)) throw err;
      this.log.warn(err.message);
      return "fail";
    }
    if (!lookup) return "fail";
    // Only our own domain has accounts here; anything else is simply unknown.
    if (!lookup.user.endsWith(this.domainSuffix)) return NOT_FOUND;
    try {
      const record = this.existingRecord(lookup.user);
      // Only a passdb lookup of an address without account goes on to creation, which is asynchronous.
      if (record || lookup.type === "userdb") return recordReply(record);
      return this.lookupPassdb(lookup.user, lookup.password).then(recordReply, (err) => this.invalid(err));
    } catch (err) {
      return this.invalid(err);
    }
  }

  listUsers(): Promise<string[]> {
    return listAddresses(this.config.mailboxesDir);
  }

  /** The account's record, read synchronously (the login hot path). */
  private existingRecord(addr: string): Record<string, string> | undefined {
    const account = accountFor(this.config.mailboxesDir, addr);
    const hash = readPasswordHash(account, this.log);
    return hash === undefined ? undefined : userdbRecord(account, hash, this.opts.mailUser);
  }

  /** Creates the account, unless a concurrent first login of the same address just did; runs under its lock. */
  private async create(addr: string, password: string): Promise<Record<string, string> | undefined> {
    const winner = await this.lookupUserdb(addr);
    if (winner) return winner;
    const account = accountFor(this.config.mailboxesDir, addr);
    await setPassword(account, PASSWORD_SCHEME_PREFIX + (await this.hasher.hash(password)));
    this.log.info(`Created address: ${addr}`);
    return this.lookupUserdb(addr);
  }

  /** An address that cannot name a mailbox is unknown (logged); any other error goes on. */
  private invalid(err: unknown): LookupResult {
    if (!(err instanceof InvalidAddressError)) throw err;
    this.log.warn(err.message);
    return NOT_FOUND;
  }
}

/** Starts the doveauth dict server. */
export async function startDoveauth(config: DaemonConfig, opts: DoveauthOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger("doveauth");
  const hasher = opts.hasher ?? inlineHasher();
  const doveauth = new Doveauth(config, { ...opts, log, hasher });
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
      await hasher.close();
    },
  };
}
