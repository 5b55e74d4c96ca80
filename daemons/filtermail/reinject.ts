// Hands accepted mail back to Postfix's reinjection smtpd. Connections are kept open between messages
// (Postfix's reinject listener has a process limit, and a fresh connection per message costs three round
// trips); a pooled connection that turns out dead before the message was sent is replaced once, which is safe
// because the server cannot have the message yet (with BDAT the message goes out with the envelope, so a
// connection that fails then answers 4xx instead). Every failure becomes a 4xx reply: never a silent loss.

import { SmtpClientConnection, SmtpClientError, type ClientOptions, type Transaction } from "../smtp/client";
import { type Reply } from "../smtp/reply";
import { REPLIES } from "./replies";

// Idle connections kept per filter: enough for the 50 concurrent messages of the bench without opening and
// closing connections all the time (which cost a connect, greeting, EHLO and QUIT each), and below the
// re-injection listener's process limit of 100 (master.cf), so idle ones never lock out busy ones.
const MAX_IDLE_CONNECTIONS = 64;
// Postfix's smtpd drops idle clients after smtpd_timeout (300 s); close ours well before that.
const IDLE_CLOSE_MS = 30_000;
// Idle connections are closed by one sweep at this interval rather than a timer per message, so a connection is
// closed after 30 to 40 s of idleness.
const SWEEP_MS = 10_000;

export interface ReinjectResult {
  reply: Reply;
  accepted: boolean;
}

export class Reinjector {
  /** Idle connections, the least recently used first. */
  private idle: { conn: SmtpClientConnection; since: number }[] = [];
  private closed = false;
  private readonly sweeper = setInterval(() => this.closeStale(), SWEEP_MS).unref();

  constructor(
    private readonly opts: ClientOptions,
    private readonly log: (line: string) => void,
  ) {}

  async send(
    t: Omit<Transaction, "mailParams"> & { mailParams: Map<string, string> },
  ): Promise<ReinjectResult> {
    for (let attempt = 0; ; attempt++) {
      const pooled = this.takeIdle();
      let conn: SmtpClientConnection;
      try {
        conn = pooled ?? (await SmtpClientConnection.connect(this.opts));
      } catch (err) {
        this.log(`reinjection to ${this.opts.host}:${this.opts.port} failed: ${(err as Error).message}`);
        return { reply: REPLIES.localError, accepted: false };
      }
      try {
        const result = await conn.send({
          ...t,
          mailParams: supportedParams(t.mailParams, conn.capabilities),
        });
        if (result.accepted && conn.reusable) this.release(conn);
        else conn.quit();
        return result;
      } catch (err) {
        conn.destroy();
        const e = err as SmtpClientError;
        if (pooled && !e.messageSent && attempt === 0) continue; // stale pooled connection: one fresh try
        this.log(`reinjection to ${this.opts.host}:${this.opts.port} failed: ${e.message}`);
        return { reply: REPLIES.localError, accepted: false };
      }
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const { conn } of this.idle) conn.quit();
    this.idle = [];
  }

  /** The most recently used idle connection that is still open. */
  private takeIdle(): SmtpClientConnection | undefined {
    while (this.idle.length > 0) {
      const { conn } = this.idle.pop()!;
      if (conn.alive) return conn;
    }
    return undefined;
  }

  private release(conn: SmtpClientConnection): void {
    if (this.closed || this.idle.length >= MAX_IDLE_CONNECTIONS) {
      conn.quit();
      return;
    }
    this.idle.push({ conn, since: Date.now() });
  }

  private closeStale(): void {
    const now = Date.now();
    while (this.idle.length > 0 && now - this.idle[0].since >= IDLE_CLOSE_MS) this.idle.shift()!.conn.quit();
  }
}

/**
 * The MAIL FROM parameters worth passing on: BODY and SMTPUTF8, when the server supports them (Postfix's
 * reinject smtpd does). SIZE is dropped (the message is already here), and Postfix adds nothing else.
 */
function supportedParams(params: Map<string, string>, capabilities: Set<string>): string[] {
  const out: string[] = [];
  const body = params.get("BODY");
  if (body !== undefined && /^(7BIT|8BITMIME)$/i.test(body) && capabilities.has("8BITMIME"))
    out.push(`BODY=${body.toUpperCase()}`);
  if (params.has("SMTPUTF8") && capabilities.has("SMTPUTF8")) out.push("SMTPUTF8");
  return out;
}
