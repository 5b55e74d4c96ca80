// chatmail-metadata: the dict behind Dovecot's IMAP METADATA (relay-daemons.md §7). Clients store push device
// tokens under /private/devicetoken and read server facts (iroh relay, recipient limit, TURN) under
// /shared/vendor/deltachat/*; the LMTP push hook sets /private/messagenew for each new message, which queues a
// push notification per device token. Sets take effect when `S` arrives, as upstream; unknown keys fail the commit.
import { connect } from "node:net";
import { join } from "node:path";
import { irohRelayUrl } from "../../core/config/load";
import type { RelayConfig } from "../../core/config/options";
import { found, NOT_FOUND, type LookupResult } from "../dictproxy/protocol";
import { startDictServer } from "../dictproxy/server";
import { InvalidAddressError } from "../doveauth/user";
import { createLogger, type Logger } from "../dictproxy/log";
import { METADATA_SOCKET, PENDING_NOTIFICATIONS_DIR } from "../paths";
import type { Service } from "../service";
import { createNotifier, type Notifier } from "./notifier";
import { createTokenStore, type TokenStore } from "./tokens";

/** Server entries clients read: Dovecot maps GETMETADATA "" /shared/vendor/deltachat/<name> to this dict prefix. */
const SERVER_ENTRY_PREFIX = "vendor/vendor.dovecot/pvt/server/vendor/deltachat/";
/** What clients may put in one message: Postfix's default smtpd_recipient_limit. */
export const MAX_SMTP_RECIPIENTS = 1000;
/** chatmail-turn answers within this or the TURN entry is reported as absent. */
export const TURN_TIMEOUT_MS = 5000;

export interface MetadataOptions {
  socketPath?: string;
  log?: Logger;
  socketMode?: number;
  /** chatmail-turn's socket; when set, the `turn` entry carries fresh TURN credentials. */
  turnSocketPath?: string;
  /** Seconds per notification retry level (tests). */
  retryDelaysS?: readonly number[];
}

export interface MetadataService extends Service {
  readonly tokens: TokenStore;
  readonly notifier: Notifier;
}

/** One line "user:password" from chatmail-turn, which writes fresh credentials to each connection. */
export function turnCredentials(socketPath: string, timeoutMs = TURN_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let data = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error("timed out"));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      data += chunk;
      if (data.includes("\n") || data.length > 4096) sock.end();
    });
    sock.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      const line = data.split("\n")[0].trim();
      if (line) resolve(line);
      else reject(new Error("empty answer"));
    });
  });
}

export async function startMetadata(
  config: RelayConfig,
  opts: MetadataOptions = {},
): Promise<MetadataService> {
  const log = opts.log ?? createLogger("chatmail-metadata");
  const domainSuffix = `@${config.mailDomain}`;
  const tokens = createTokenStore(config.mailboxesDir, log);
  const notifier = createNotifier({
    queueDir: join(config.mailboxesDir, PENDING_NOTIFICATIONS_DIR),
    notificationUrl: config.notificationUrl,
    tokens,
    log,
    retryDelaysS: opts.retryDelaysS,
  });
  await notifier.requeue();

  const isLocal = (addr: string | undefined): addr is string =>
    addr !== undefined && addr.endsWith(domainSuffix);

  const serverEntry = async (name: string): Promise<LookupResult> => {
    switch (name) {
      case "irohrelay": {
        const url = irohRelayUrl(config);
        return url ? found(url) : NOT_FOUND;
      }
      case "maxsmtprecipients":
        return found(String(MAX_SMTP_RECIPIENTS));
      case "turn":
        if (!opts.turnSocketPath) return NOT_FOUND;
        try {
          return found(`${config.mailDomain}:3478:${await turnCredentials(opts.turnSocketPath)}`);
        } catch (err) {
          log.error(`failed to get TURN credentials: ${(err as Error).message}`);
          return NOT_FOUND;
        }
      default:
        return NOT_FOUND;
    }
  };

  const lookup = async (key: string, user: string | undefined): Promise<LookupResult> => {
    const parts = key.split("/");
    if (parts[0] === "priv" && parts.length === 3 && parts[2] === "devicetoken") {
      // No tokens is an empty value, not "not found" (upstream answers `O` and clients rely on nothing else).
      if (!isLocal(user)) return found("");
      return found((await tokens.get(user)).join(" "));
    }
    if (parts[0] === "shared" && parts.length >= 3) {
      const rest = parts.slice(2).join("/");
      if (rest.startsWith(SERVER_ENTRY_PREFIX)) return serverEntry(rest.slice(SERVER_ENTRY_PREFIX.length));
    }
    log.debug(`lookup ignored: ${JSON.stringify(key)}`);
    return NOT_FOUND;
  };

  const server = await startDictServer({
    socketPath: opts.socketPath ?? METADATA_SOCKET,
    socketMode: opts.socketMode,
    log,
    handlers: {
      lookup,
      async set(tx, key, value) {
        const parts = key.split("/");
        if (parts[0] !== "priv" || parts.length !== 3) return false;
        if (!isLocal(tx.user)) {
          log.warn(`metadata set for foreign or missing user ${JSON.stringify(tx.user)} refused`);
          return false;
        }
        try {
          if (parts[2] === "devicetoken") {
            // Clients clear the entry by setting it empty; an empty token is never stored.
            if (value !== "") await tokens.add(tx.user, value);
            return true;
          }
          if (parts[2] === "messagenew") {
            await notifier.newMessage(tx.user);
            return true;
          }
        } catch (err) {
          if (err instanceof InvalidAddressError) {
            log.warn(err.message);
            return false;
          }
          throw err;
        }
        return false;
      },
    },
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
