// Push device tokens per account in <addr>/metadata.json, the layout of existing relays (docs/daemons.md,
// 'Accounts on disk'; upstream: chatmail/relay 1.12.0, chatmaild/src/chatmaild/metadata.py, class Metadata):
// {"devicetoken": {"<token>": <unix time set>}}. A token is valid for 90 days after it was last set; expired ones
// are dropped on every change. Writers of one file take an in-process lock (this daemon is its only writer) and
// replace the file atomically, so readers need no lock.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { accountFor, writeFileAtomic } from "../doveauth/user";
import type { Logger } from "../dictproxy/log";
import { KeyedLock } from "../lock";

/** Tokens not refreshed for this long are dropped. */
export const TOKEN_VALIDITY_S = 90 * 86400;
/** Clock skew tolerated for timestamps in the future. */
const FUTURE_SLACK_S = 60;

type TokenMap = Record<string, number>;

/** The device tokens of every account, one metadata.json per account. */
export class TokenStore {
  private readonly lock = new KeyedLock();

  constructor(
    private readonly mailboxesDir: string,
    private readonly log: Logger,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  add(addr: string, token: string): Promise<void> {
    return this.modify(addr, (tokens) => {
      tokens[token] = Math.trunc(this.now());
    });
  }

  remove(addr: string, token: string): Promise<void> {
    return this.modify(addr, (tokens) => {
      delete tokens[token];
    });
  }

  /** Valid tokens in the order they were first set. */
  async get(addr: string): Promise<string[]> {
    const doc = await this.read(this.pathFor(addr));
    const raw = (doc as { devicetoken?: unknown } | null)?.devicetoken;
    const tokens = this.tokensOf(doc);
    const stale =
      Array.isArray(raw) ||
      (raw && typeof raw === "object" && Object.keys(raw).length !== Object.keys(tokens).length);
    // Expired entries and the legacy list shape are rewritten so the file does not keep dead tokens.
    if (stale) await this.modify(addr, () => {});
    return Object.keys(tokens);
  }

  private pathFor(addr: string): string {
    return join(accountFor(this.mailboxesDir, addr).maildir, "metadata.json");
  }

  /** Rewrites one account's file under its lock: read, change the valid tokens, write atomically. */
  private async modify(addr: string, change: (tokens: TokenMap) => void): Promise<void> {
    const path = this.pathFor(addr);
    return this.lock.run(path, async () => {
      const doc = await this.read(path);
      const tokens = this.tokensOf(doc);
      change(tokens);
      const next = {
        ...(doc && typeof doc === "object" && !Array.isArray(doc) ? doc : {}),
        devicetoken: tokens,
      };
      // The mailbox directory may not exist yet: Dovecot creates it at first delivery.
      await mkdir(join(path, ".."), { recursive: true });
      await writeFileAtomic(path, JSON.stringify(next));
    });
  }

  private async read(path: string): Promise<unknown> {
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
      this.log.warn(`corrupt serialization state at: ${path}`);
      return {};
    }
  }

  /** Current valid tokens of a stored document; the legacy list shape counts as set now. */
  private tokensOf(doc: unknown): TokenMap {
    const raw = (doc as { devicetoken?: unknown } | null)?.devicetoken;
    const out: TokenMap = {};
    if (Array.isArray(raw)) {
      for (const t of raw) if (typeof t === "string") out[t] = Math.trunc(this.now());
    } else if (raw && typeof raw === "object") {
      for (const [t, ts] of Object.entries(raw)) if (this.isValid(ts)) out[t] = ts as number;
    }
    return out;
  }

  private isValid(ts: unknown): boolean {
    const t = this.now();
    return typeof ts === "number" && ts > t - TOKEN_VALIDITY_S && ts < t + FUTURE_SLACK_S;
  }
}
