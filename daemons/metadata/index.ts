// chatmail-metadata: the dict behind Dovecot's IMAP METADATA (docs/daemons.md, 'Metadata and push'; upstream:
// chatmail/relay 1.12.0, chatmaild/src/chatmaild/metadata.py). Clients store push device tokens under
// /private/devicetoken and read server facts (iroh relay, recipient limit, TURN, app versions) under
// /shared/vendor/deltachat/*; the LMTP push hook sets /private/messagenew for each new message, which queues a
// push notification per device token. Sets take effect when `S` arrives, as upstream; unknown keys fail the commit.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { APPVERSIONS_FILE, METADATA_SOCKET, PENDING_NOTIFICATIONS_DIR, STUN_PORT } from "../../core/server";
import { irohRelayUrl, type DaemonConfig } from "../config";
import { found, NOT_FOUND, type LookupResult } from "../dictproxy/protocol";
import { startDictServer, type DictHandlers, type DictTransaction } from "../dictproxy/server";
import { InvalidAddressError } from "../doveauth/user";
import { createLogger, type Logger } from "../dictproxy/log";
import type { RelayMetrics } from "../metrics/relay";
import type { Service } from "../service";
import { Notifier } from "./notifier";
import { TokenStore } from "./tokens";
import { turnCredentials } from "./turn";

/** Server entries clients read: Dovecot maps GETMETADATA "" /shared/vendor/deltachat/<name> to this dict prefix. */
const SERVER_ENTRY_PREFIX = "vendor/vendor.dovecot/pvt/server/vendor/deltachat/";
/** What clients may put in one message: Postfix's default smtpd_recipient_limit. */
export const MAX_SMTP_RECIPIENTS = 1000;

export type MetadataConfig = Pick<
  DaemonConfig,
  "mailDomain" | "mailboxesDir" | "notificationUrl" | "irohRelay"
>;

export interface MetadataOptions {
  socketPath?: string;
  log?: Logger;
  socketMode?: number;
  /** coturn's shared secret; when set, the `turn` entry carries fresh TURN credentials. */
  turnSecret?: string;
  /** The app versions file (default APPVERSIONS_FILE); absent means no `appversions` entry. */
  appVersionsPath?: string;
  /** Seconds per notification retry level (tests). */
  retryDelaysS?: readonly number[];
  /** The metrics to move (default: the process's own). */
  metrics?: RelayMetrics;
}

export interface MetadataService extends Service {
  readonly tokens: TokenStore;
  readonly notifier: Notifier;
}

export async function startMetadata(
  config: MetadataConfig,
  opts: MetadataOptions = {},
): Promise<MetadataService> {
  const log = opts.log ?? createLogger("chatmail-metadata");
  const tokens = new TokenStore(config.mailboxesDir, log);
  const notifier = new Notifier({
    queueDir: join(config.mailboxesDir, PENDING_NOTIFICATIONS_DIR),
    notificationUrl: config.notificationUrl,
    tokens,
    log,
    retryDelaysS: opts.retryDelaysS,
    metrics: opts.metrics,
  });
  await notifier.requeue();
  const server = await startDictServer({
    socketPath: opts.socketPath ?? METADATA_SOCKET,
    socketMode: opts.socketMode,
    log,
    handlers: new MetadataDict(config, tokens, notifier, log, {
      turnSecret: opts.turnSecret,
      appVersionsPath: opts.appVersionsPath ?? APPVERSIONS_FILE,
    }),
  });
  return {
    tokens,
    notifier,
    async close() {
      await server.close();
      await notifier.close();
    },
  };
}

/** The dict's answers: lookups read device tokens and server entries, sets store tokens and announce new mail. */
export class MetadataDict implements DictHandlers {
  private readonly domainSuffix: string;

  constructor(
    private readonly config: MetadataConfig,
    private readonly tokens: TokenStore,
    private readonly notifier: Notifier,
    private readonly log: Logger,
    private readonly server: { turnSecret?: string; appVersionsPath: string },
  ) {
    this.domainSuffix = `@${config.mailDomain}`;
  }

  async lookup(key: string, user: string | undefined): Promise<LookupResult> {
    const parts = key.split("/");
    if (parts[0] === "priv" && parts.length === 3 && parts[2] === "devicetoken") {
      // No tokens is an empty value, not "not found" (upstream answers `O` and clients rely on nothing else).
      if (!this.isLocal(user)) return found("");
      return found((await this.tokens.get(user)).join(" "));
    }
    if (parts[0] === "shared" && parts.length >= 3) {
      const rest = parts.slice(2).join("/");
      if (rest.startsWith(SERVER_ENTRY_PREFIX))
        return this.serverEntry(rest.slice(SERVER_ENTRY_PREFIX.length));
    }
    this.log.debug(`lookup ignored: ${JSON.stringify(key)}`);
    return NOT_FOUND;
  }

  async set(tx: DictTransaction, key: string, value: string): Promise<boolean> {
    const parts = key.split("/");
    if (parts[0] !== "priv" || parts.length !== 3) return false;
    if (!this.isLocal(tx.user)) {
      this.log.warn(`metadata set for foreign or missing user ${JSON.stringify(tx.user)} refused`);
      return false;
    }
    try {
      return await this.setPrivate(tx.user, parts[2], value);
    } catch (err) {
      if (err instanceof InvalidAddressError) {
        this.log.warn(err.message);
        return false;
      }
      throw err;
    }
  }

  /** One /private entry of a local user; false for entries that cannot be set. */
  private async setPrivate(user: string, entry: string, value: string): Promise<boolean> {
    switch (entry) {
      case "devicetoken":
        // Clients clear the entry by setting it empty; an empty token is never stored.
        if (value !== "") await this.tokens.add(user, value);
        return true;
      case "messagenew":
        await this.notifier.newMessage(user);
        return true;
      default:
        return false;
    }
  }

  private async serverEntry(name: string): Promise<LookupResult> {
    switch (name) {
      case "irohrelay": {
        const url = irohRelayUrl(this.config);
        return url ? found(url) : NOT_FOUND;
      }
      case "maxsmtprecipients":
        return found(String(MAX_SMTP_RECIPIENTS));
      case "turn":
        return this.turnEntry();
      case "appversions":
        return this.appVersionsEntry();
      default:
        return NOT_FOUND;
    }
  }

  /** host:port:user:password for the relay's TURN server, made fresh for each lookup; absent without TURN. */
  private turnEntry(): LookupResult {
    if (this.server.turnSecret === undefined) return NOT_FOUND;
    const { username, password } = turnCredentials(this.server.turnSecret);
    return found(`${this.config.mailDomain}:${STUN_PORT}:${username}:${password}`);
  }

  /**
   * The app versions file as one line of JSON (the dict protocol is line-based; line breaks inside strings stay
   * escaped). Read at each lookup, so a new file needs no restart; absent or broken, the entry is absent.
   */
  private async appVersionsEntry(): Promise<LookupResult> {
    let text: string;
    try {
      text = await readFile(this.server.appVersionsPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT")
        this.log.error(`failed to read ${this.server.appVersionsPath}: ${(err as Error).message}`);
      return NOT_FOUND;
    }
    try {
      return found(JSON.stringify(JSON.parse(text)));
    } catch (err) {
      this.log.error(`failed to read ${this.server.appVersionsPath}: ${(err as Error).message}`);
      return NOT_FOUND;
    }
  }

  private isLocal(addr: string | undefined): addr is string {
    return addr !== undefined && addr.endsWith(this.domainSuffix);
  }
}
