// filtermail: the encryption-enforcing before-queue proxy. Postfix's smtpd_proxy_filter connects here
// (outgoing: filtermailSmtpPort, incoming: filtermailSmtpPortIncoming); accepted mail goes on to the
// reinjection smtpd (postfixReinjectPort / postfixReinjectPortIncoming), and the client gets that server's
// answer, so a message counts as accepted only once Postfix has queued it (docs/decisions.md, 'The filter as an
// SMTP proxy'; the rules: docs/daemons.md, 'Encryption filter').

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { DaemonConfig } from "../config";
import { METRICS, type RelayMetrics } from "../metrics/relay";
import type { Service } from "../service";
import { reply } from "../smtp/reply";
import { startSmtpServer, type Envelope } from "../smtp/server";
import { normalizeAddress } from "./address";
import { flushLog, logLine } from "./log";
import { SendRateLimiter } from "./ratelimit";
import { Reinjector } from "./reinject";
import { REPLIES } from "./replies";
import { decide, VERDICT_RULES, type Direction, type VerdictPolicy } from "./verdict";

export type FiltermailConfig = Pick<
  DaemonConfig,
  | "mailDomain"
  | "mailboxesDir"
  | "maxMessageSize"
  | "maxUserSendPerMinute"
  | "maxUserSendBurstSize"
  | "passthroughSenders"
  | "passthroughRecipients"
  | "filtermailSmtpPort"
  | "filtermailSmtpPortIncoming"
  | "postfixReinjectPort"
  | "postfixReinjectPortIncoming"
>;

export interface FiltermailOptions {
  listenHost?: string;
  /** Overrides the config's port (0 picks a free one; see `port` on the result). */
  listenPort?: number;
  downstreamHost?: string;
  downstreamPort?: number;
  /** Source address for reinjection; incoming defaults to 127.0.0.2 (OpenDKIM tells the directions apart by it). */
  downstreamLocalAddress?: string;
  log?: (line: string) => void;
  /**
   * Deadline for each command line and for the message (plus its size at 500 bytes/s); a client that misses it
   * gets 421 (default 300 s, RFC 5321 4.5.3.2.7's server timeout; see daemons/smtp/session.ts).
   */
  deadlineMs?: number;
  /** Deadline for each reinjection command reply (default 30 s). */
  downstreamCommandTimeoutMs?: number;
  /** Deadline for the reinjection server's end-of-data reply (default 60 s, below Postfix's smtpd_proxy_timeout of 100 s). */
  downstreamDataTimeoutMs?: number;
  /** The metrics to move (default: the process's own). */
  metrics?: RelayMetrics;
  /** The clock of the last-delivery gauge, in ms (tests). */
  now?: () => number;
}

export interface FiltermailService extends Service {
  /** The port actually listened on. */
  readonly port: number;
}

const DEFAULT_DEADLINE_MS = 300_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
const DEFAULT_DATA_TIMEOUT_MS = 60_000;
// Postfix opens at most maxproc proxy connections per service (5000 for submission); more from loopback is
// a fault, and refusing them with 421 protects the relay's memory budget.
const MAX_CONNECTIONS = 5000;
// Incoming reinjection comes from this address so that the reinject listener's OpenDKIM verifies rather than
// signs (docs/relay.md, 'OpenDKIM').
const INCOMING_SOURCE_ADDRESS = "127.0.0.2";

export async function startFiltermail(
  config: FiltermailConfig,
  direction: Direction,
  opts: FiltermailOptions = {},
): Promise<FiltermailService> {
  if (direction !== "outgoing" && direction !== "incoming") {
    throw new Error(
      `filtermail: direction ${JSON.stringify(direction)} is not allowed; use "outgoing" or "incoming"`,
    );
  }
  const log = opts.log ?? logLine;
  const outgoing = direction === "outgoing";
  const metrics = opts.metrics ?? METRICS;
  const now = opts.now ?? Date.now;
  const limiter = new SendRateLimiter(config.maxUserSendPerMinute, config.maxUserSendBurstSize);
  const reinjector = new Reinjector(
    {
      host: opts.downstreamHost ?? "127.0.0.1",
      port:
        opts.downstreamPort ?? (outgoing ? config.postfixReinjectPort : config.postfixReinjectPortIncoming),
      localAddress: opts.downstreamLocalAddress ?? (outgoing ? undefined : INCOMING_SOURCE_ADDRESS),
      heloName: "filtermail",
      commandTimeoutMs: opts.downstreamCommandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      dataTimeoutMs: opts.downstreamDataTimeoutMs ?? DEFAULT_DATA_TIMEOUT_MS,
    },
    log,
  );
  const policy: VerdictPolicy = {
    mailDomain: config.mailDomain,
    passthroughSenders: config.passthroughSenders,
    passthroughRecipients: config.passthroughRecipients,
    incomingCleartextAllowed: (addr) => incomingCleartextAllowed(config.mailboxesDir, addr),
  };

  // One counter handle per rule, found once: building the series key per message is measurable here.
  const counters = (verdict: "accepted" | "refused") =>
    new Map(
      VERDICT_RULES[direction][verdict].map((rule: string) => [
        rule,
        metrics.filterVerdicts.handle({ direction, verdict, rule }),
      ]),
    );
  const acceptedCounters = counters("accepted");
  const refusedCounters = counters("refused");

  const server = await startSmtpServer(
    {
      host: opts.listenHost ?? "127.0.0.1",
      port: opts.listenPort ?? (outgoing ? config.filtermailSmtpPort : config.filtermailSmtpPortIncoming),
      name: "filtermail SMTP",
      maxMessageBytes: config.maxMessageSize,
      deadlineMs: opts.deadlineMs ?? DEFAULT_DEADLINE_MS,
      maxConnections: MAX_CONNECTIONS,
      log,
    },
    {
      onMailFrom(address) {
        if (!outgoing) return undefined;
        // Rust order: the address check comes before the rate limit, so garbage does not use up a sender's quota.
        if (address.split("@").length !== 2) return REPLIES.invalidFromAddress(address);
        // One quota per mailbox: "\"alice\"@..." and "alice@..." are the same sender to Postfix.
        const sender = normalizeAddress(address, config.mailDomain);
        if (sender === undefined) return REPLIES.invalidFromAddress(address);
        if (!limiter.allow(sender)) {
          metrics.rateLimitHits.inc();
          return REPLIES.tooMuchMail(address);
        }
        return undefined;
      },
      async onData(envelope: Envelope, message: Buffer) {
        const verdict = decide(direction, envelope, message, policy);
        for (const line of verdict.log) log(line);
        (verdict.accept ? acceptedCounters : refusedCounters).get(verdict.rule)?.inc();
        if (!verdict.accept) return verdict.reply;
        const result = await reinjector.send({
          mailFrom: verdict.mailFrom,
          mailParams: envelope.mailParams,
          rcptTos: envelope.rcptTos,
          message,
        });
        if (!outgoing && result.accepted) metrics.lastIncomingDelivery.set(Math.floor(now() / 1000));
        return result.reply.lines.length > 0 ? result.reply : reply(result.reply.code, "OK");
      },
    },
  );
  log(`filtermail ${direction}: entering serving loop on port ${server.port}`);
  flushLog();
  return {
    port: server.port,
    async close() {
      await server.close();
      reinjector.close();
      flushLog();
    },
  };
}

/**
 * Upstream `is_incoming_cleartext_ok`: the address's mailbox has no enforceE2EEincoming marker. Addresses that
 * could escape the mailboxes directory are never OK. Accounts are lower-case, so the lower-cased address is
 * looked up: "User@" must not bypass the marker of "user@".
 */
export function incomingCleartextAllowed(mailboxesDir: string, addr: string): boolean {
  const lower = addr.toLowerCase();
  if (!lower.includes("@") || lower.includes("/") || lower.includes("\0") || lower.startsWith("."))
    return false;
  return !existsSync(join(mailboxesDir, lower, "enforceE2EEincoming"));
}
