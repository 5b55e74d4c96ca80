// newaccount: the instant-onboarding endpoint (docs/daemons.md, 'New accounts'; docs/relay.md, 'What a client
// expects'; upstream: chatmail/relay 1.12.0, chatmaild/src/chatmaild/newemail.py). Delta Chat POSTs to
// https://<domain>/new (or the legacy /cgi-bin/newemail.py of printed QR codes); nginx proxies both here, query
// string included. We answer {"email", "password"} with CSPRNG values; doveauth creates the account at first
// login. A small HTTP service instead of CGI: no process start per request and no fcgiwrap to run
// (docs/decisions.md, 'newaccount as an HTTP service').
import { randomInt } from "node:crypto";
import type { DaemonConfig } from "../config";
import { pythonJson } from "../dictproxy/protocol";
import { createLogger, type Logger } from "../dictproxy/log";
import { startHttpServer, type HttpRequest, type HttpResponse } from "../http/server";
import { METRICS, type RefusalReason, type RelayMetrics } from "../metrics/relay";
import type { Service } from "../service";
import { CreationLimiter } from "../doveauth/creationlimit";

/** Paths nginx forwards; the second keeps QR codes printed for old relays working. */
export const NEW_ACCOUNT_PATHS = ["/new", "/cgi-bin/newemail.py"] as const;
const USERNAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
// Python's string.ascii_letters + digits + punctuation, as upstream's newemail.py.
const PASSWORD_ALPHABET =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
/** Extra password characters beyond the minimum, as upstream (12 characters by default). */
const PASSWORD_EXTRA_LENGTH = 3;

export type NewAccountConfig = Pick<
  DaemonConfig,
  | "mailDomain"
  | "usernameMaxLength"
  | "passwordMinLength"
  | "passwordMaxLength"
  | "inviteTokens"
  | "tlsMode"
  | "newAccountPort"
  | "accountCreationsPerMinute"
  | "accountCreationsPerMinutePerClient"
>;

function randomString(alphabet: string, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

/** RFC 3986 percent-encoding of everything but unreserved characters and `safe` (Python's urllib quote). */
function quote(text: string, safe: string): string {
  return Array.from(Buffer.from(text, "utf8"))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_.~-]/.test(c) || safe.includes(c)
        ? c
        : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

export type NewAccountResult =
  | { ok: true; email: string; password: string; dcloginUrl?: string }
  /** `reason` is the answer's text; `refusal` what the metrics count it as. */
  | { ok: false; status: number; reason: string; refusal: RefusalReason };

/**
 * Credentials for one new account. `query` is the raw query string (`/new?TOKEN`): with invite tokens configured it
 * must be one of them and becomes the password's prefix; without them no token is accepted.
 */
export function newAccount(config: NewAccountConfig, query: string): NewAccountResult {
  let prefix = "";
  if (config.inviteTokens.length > 0) {
    if (query === "")
      return {
        ok: false,
        status: 403,
        reason: "This relay needs an invite link or QR code; ask the admin for an invite.",
        refusal: "invite",
      };
    if (!config.inviteTokens.includes(query))
      return { ok: false, status: 403, reason: "The invite token is not valid.", refusal: "invite" };
    prefix = query;
  } else if (query !== "") {
    return { ok: false, status: 403, reason: "This relay does not use invite tokens.", refusal: "invalid" };
  }
  const email = `${randomString(USERNAME_ALPHABET, config.usernameMaxLength)}@${config.mailDomain}`;
  // Never longer than doveauth accepts at the first login.
  const length = Math.min(config.passwordMinLength + PASSWORD_EXTRA_LENGTH, config.passwordMaxLength);
  const password = prefix + randomString(PASSWORD_ALPHABET, length);
  if (config.tlsMode !== "self-signed") return { ok: true, email, password };
  // Self-signed relays: clients must accept the certificate, which only a dclogin: URL can say (ic=3).
  const dcloginUrl = `dclogin:${quote(email, "@[]")}?p=${quote(password, "")}&v=1&ic=3`;
  return { ok: true, email, password, dcloginUrl };
}

export interface NewAccountOptions {
  port?: number;
  host?: string;
  log?: Logger;
  /** The clock of the creation limits, in ms (tests). */
  now?: () => number;
  /** The metrics to move (default: the process's own). */
  metrics?: RelayMetrics;
}

/**
 * The client's address: nginx's X-Real-IP when the request comes through the local proxy, else the peer.
 * clientKey() ignores loopback, so requests without a real client address count only towards the total.
 */
export function clientAddress(req: HttpRequest): string | undefined {
  const peer = req.remoteAddress;
  const header = req.headers["x-real-ip"];
  const local = peer === "127.0.0.1" || peer === "::1" || peer === "::ffff:127.0.0.1";
  return local && header !== undefined ? header.trim() : peer;
}

export interface NewAccountService extends Service {
  readonly port: number;
}

function json(status: number, body: string, extra: Record<string, string> = {}): HttpResponse {
  return {
    status,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store", ...extra },
    body: `${body}\n`,
  };
}

export async function startNewAccount(
  config: NewAccountConfig,
  opts: NewAccountOptions = {},
): Promise<NewAccountService> {
  const log = opts.log ?? createLogger("newaccount");
  const limiter = new CreationLimiter(config, opts.now);
  const metrics = opts.metrics ?? METRICS;
  const handle = (req: HttpRequest): HttpResponse => {
    // The request body (Delta Chat sends none) was read and dropped by the server.
    if (!(NEW_ACCOUNT_PATHS as readonly string[]).includes(req.path))
      return json(404, pythonJson({ reason: "not found" }));
    if (req.method !== "POST") return json(405, pythonJson({ reason: "use POST" }), { Allow: "POST" });
    const result = newAccount(config, req.query);
    // Invite checks first, so a wrong token costs no one a creation.
    const limited = result.ok ? limiter.take(clientAddress(req)) : undefined;
    if (limited) {
      log.warn(`refused new account: ${limited}`);
      metrics.creationRefusals.inc({ reason: "rate_limit" });
      return json(429, pythonJson({ reason: "Too many new accounts right now; try again in a minute." }), {
        "Retry-After": "60",
      });
    }
    if (!result.ok) {
      log.warn(`refused new account: ${result.reason}`);
      metrics.creationRefusals.inc({ reason: result.refusal });
      return json(result.status, pythonJson({ reason: result.reason }));
    }
    const body: Record<string, string> = { email: result.email, password: result.password };
    if (result.dcloginUrl) body.dclogin_url = result.dcloginUrl;
    metrics.accountCreations.inc({ via: "new" });
    return json(200, pythonJson(body));
  };
  const server = await startHttpServer({
    name: "newaccount",
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? config.newAccountPort,
    log,
    handle,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 10_000,
  });
  return { port: server.port, close: () => server.close() };
}
