// doveauth: Dovecot's passdb and userdb over the dict protocol, creating an address at its first login
// (relay-daemons.md §5). Dovecot sends `Lshared/passdb/<password>"<user>` and `Lshared/userdb/<user>`; an existing
// account answers with its stored hash and Dovecot compares the password itself, so a wrong password can never
// overwrite anything. The core (lookupPassdb/lookupUserdb) is kept apart from the socket so it can also sit behind
// Dovecot 2.4's Lua/HTTP auth later.
import { existsSync } from "node:fs";
import type { RelayConfig } from "../../core/config/options";
import { found, NOT_FOUND, pythonJson, type LookupResult } from "../dictproxy/protocol";
import { startDictServer } from "../dictproxy/server";
import { createLogger, type Logger } from "../dictproxy/log";
import { DOVEAUTH_SOCKET, NOCREATE_FILE } from "../paths";
import type { Service } from "../service";
import { inlineHasher, type PasswordHasher } from "./hashpool";
import { creationRefusal } from "./rules";
import { resourceShortage } from "./syslimits";
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

export interface Doveauth {
  lookupUserdb(addr: string): Promise<Record<string, string> | undefined>;
  /** The account's record; creates it first when the rules allow. Undefined: no such account (N). */
  lookupPassdb(addr: string, password: string): Promise<Record<string, string> | undefined>;
  /** The dict lookup handler: parses the key and formats the reply (synchronous unless it creates). */
  handleLookup(key: string): LookupResult | Promise<LookupResult>;
  listUsers(): Promise<string[]>;
}

export function createDoveauth(config: RelayConfig, opts: DoveauthOptions = {}): Doveauth {
  const log = opts.log ?? createLogger("doveauth");
  const hasher = opts.hasher ?? inlineHasher();
  const nocreatePath = opts.nocreateFile ?? NOCREATE_FILE;
  const domainSuffix = `@${config.mailDomain}`;
  // Load, memory and disk change slowly; a burst of first logins shares one reading per RESOURCE_CHECK_MS.
  let resources: { at: number; shortage: Promise<string | undefined> } | undefined;
  const checkResources = (): Promise<string | undefined> => {
    const now = Date.now();
    if (!resources || now - resources.at >= RESOURCE_CHECK_MS) {
      resources = { at: now, shortage: resourceShortage(config, log) };
    }
    return resources.shortage;
  };
  // Same-address creations queue here, so concurrent first logins end with exactly one hash.
  const creating = new Map<string, Promise<unknown>>();

  const withAddressLock = async <T>(addr: string, fn: () => Promise<T>): Promise<T> => {
    const previous = creating.get(addr) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    creating.set(addr, tail);
    try {
      return await run;
    } finally {
      if (creating.get(addr) === tail) creating.delete(addr);
    }
  };

  /** The account's record, read synchronously (the login hot path). */
  const existingRecord = (addr: string): Record<string, string> | undefined => {
    const account = accountFor(config.mailboxesDir, addr);
    const hash = readPasswordHash(account, log);
    return hash === undefined ? undefined : userdbRecord(account, hash, opts.mailUser);
  };
  const lookupUserdb = async (addr: string): Promise<Record<string, string> | undefined> =>
    existingRecord(addr);

  const lookupPassdb = async (
    addr: string,
    password: string,
  ): Promise<Record<string, string> | undefined> => {
    const existing = await lookupUserdb(addr);
    if (existing) return existing;
    const refusal = creationRefusal(config, addr, password, {
      exists: existsSync(nocreatePath),
      path: nocreatePath,
    });
    if (refusal) {
      log.warn(refusal);
      return undefined;
    }
    const shortage = await checkResources();
    if (shortage) {
      log.warn(`registration rejected: ${shortage}`);
      return undefined;
    }
    return withAddressLock(addr, async () => {
      const winner = await lookupUserdb(addr);
      if (winner) return winner;
      const account = accountFor(config.mailboxesDir, addr);
      await setPassword(account, PASSWORD_SCHEME_PREFIX + (await hasher.hash(password)));
      log.info(`Created address: ${addr}`);
      return lookupUserdb(addr);
    });
  };

  const handleLookup = (key: string): LookupResult | Promise<LookupResult> => {
    const slash1 = key.indexOf("/");
    const slash2 = key.indexOf("/", slash1 + 1);
    if (slash1 === -1 || slash2 === -1) {
      log.warn(`lookup key without namespace/type/args: ${key.length} bytes`);
      return "fail";
    }
    const namespace = key.slice(0, slash1);
    const type = key.slice(slash1 + 1, slash2);
    if (namespace !== "shared" || (type !== "userdb" && type !== "passdb")) return "fail";
    let args: string[];
    try {
      args = splitAndUnescape(key.slice(slash2 + 1));
    } catch (err) {
      log.warn(`${(err as Error).message} (${type} lookup)`);
      return "fail";
    }
    const user = type === "userdb" ? args[0] : args[1];
    if (user === undefined) {
      log.warn(`${type} lookup without a user`);
      return "fail";
    }
    // Only our own domain has accounts here; anything else is simply unknown.
    if (!user.endsWith(domainSuffix)) return NOT_FOUND;
    const answer = (record: Record<string, string> | undefined): LookupResult =>
      record ? found(pythonJson(record)) : NOT_FOUND;
    const invalid = (err: unknown): LookupResult => {
      if (!(err instanceof InvalidAddressError)) throw err;
      log.warn(err.message);
      return NOT_FOUND;
    };
    try {
      const record = existingRecord(user);
      // Only a passdb lookup of an address without account goes on to creation, which is asynchronous.
      if (record || type === "userdb") return answer(record);
      return lookupPassdb(user, args[0]).then(answer, invalid);
    } catch (err) {
      return invalid(err);
    }
  };

  return { lookupUserdb, lookupPassdb, handleLookup, listUsers: () => listAddresses(config.mailboxesDir) };
}

/** Starts the doveauth dict server. */
export async function startDoveauth(config: RelayConfig, opts: DoveauthOptions = {}): Promise<Service> {
  const log = opts.log ?? createLogger("doveauth");
  const hasher = opts.hasher ?? inlineHasher();
  const core = createDoveauth(config, { ...opts, log, hasher });
  const server = await startDictServer({
    socketPath: opts.socketPath ?? DOVEAUTH_SOCKET,
    socketMode: opts.socketMode,
    log,
    handlers: {
      lookup: (key) => core.handleLookup(key),
      async iterate(path) {
        // Dovecot's userdb iteration (doveadm -A, quota recalculation): every address directory, empty values.
        if (path !== "shared/userdb/") return [];
        return (await core.listUsers()).map((addr) => [`shared/userdb/${addr}`, ""] as const);
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
