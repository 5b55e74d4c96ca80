// Push device tokens per account in <addr>/metadata.json, the layout of existing relays (relay-daemons.md §7.4):
// {"devicetoken": {"<token>": <unix time set>}}. A token is valid for 90 days after it was last set; expired ones
// are dropped on every change. Writers of one file take an in-process lock (this daemon is its only writer) and
// replace the file atomically, so readers need no lock.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { accountFor, writeFileAtomic } from "../doveauth/user";
import type { Logger } from "../dictproxy/log";

/** Tokens not refreshed for this long are dropped. */
export const TOKEN_VALIDITY_S = 90 * 86400;
/** Clock skew tolerated for timestamps in the future. */
const FUTURE_SLACK_S = 60;

type TokenMap = Record<string, number>;

export interface TokenStore {
  add(addr: string, token: string): Promise<void>;
  remove(addr: string, token: string): Promise<void>;
  /** Valid tokens in the order they were first set. */
  get(addr: string): Promise<string[]>;
}

export function createTokenStore(
  mailboxesDir: string,
  log: Logger,
  now: () => number = () => Date.now() / 1000,
): TokenStore {
  const locks = new Map<string, Promise<unknown>>();
  const pathFor = (addr: string): string => join(accountFor(mailboxesDir, addr).maildir, "metadata.json");

  const read = async (path: string): Promise<unknown> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw err;
    }
    try {
      return JSON.parse(text);
    } catch {
      log.warn(`corrupt serialization state at: ${path}`);
      return {};
    }
  };

  const isValid = (ts: unknown): boolean => {
    const t = now();
    return typeof ts === "number" && ts > t - TOKEN_VALIDITY_S && ts < t + FUTURE_SLACK_S;
  };

  /** Current valid tokens of a stored document; the legacy list shape counts as set now. */
  const tokensOf = (doc: unknown): TokenMap => {
    const raw = (doc as { devicetoken?: unknown } | null)?.devicetoken;
    const out: TokenMap = {};
    if (Array.isArray(raw)) {
      for (const t of raw) if (typeof t === "string") out[t] = Math.trunc(now());
    } else if (raw && typeof raw === "object") {
      for (const [t, ts] of Object.entries(raw)) if (isValid(ts)) out[t] = ts as number;
    }
    return out;
  };

  const modify = async (addr: string, change: (tokens: TokenMap) => void): Promise<void> => {
    const path = pathFor(addr);
    const previous = locks.get(path) ?? Promise.resolve();
    const run = previous.then(async () => {
      const doc = await read(path);
      const tokens = tokensOf(doc);
      change(tokens);
      const next = {
        ...(doc && typeof doc === "object" && !Array.isArray(doc) ? doc : {}),
        devicetoken: tokens,
      };
      // The mailbox directory may not exist yet: Dovecot creates it at first delivery.
      await mkdir(join(path, ".."), { recursive: true });
      await writeFileAtomic(path, JSON.stringify(next));
    });
    const tail = run.catch(() => {});
    locks.set(path, tail);
    try {
      await run;
    } finally {
      if (locks.get(path) === tail) locks.delete(path);
    }
  };

  return {
    add: (addr, token) =>
      modify(addr, (tokens) => {
        tokens[token] = Math.trunc(now());
      }),
    remove: (addr, token) =>
      modify(addr, (tokens) => {
        delete tokens[token];
      }),
    async get(addr) {
      const doc = await read(pathFor(addr));
      const raw = (doc as { devicetoken?: unknown } | null)?.devicetoken;
      const tokens = tokensOf(doc);
      const stale =
        Array.isArray(raw) ||
        (raw && typeof raw === "object" && Object.keys(raw).length !== Object.keys(tokens).length);
      // Expired entries and the legacy list shape are rewritten so the file does not keep dead tokens.
      if (stale) await modify(addr, () => {});
      return Object.keys(tokens);
    },
  };
}
