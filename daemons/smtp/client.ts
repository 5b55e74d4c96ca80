// A minimal SMTP client for handing a message to a trusted local server (Postfix's reinjection smtpd).
// One connection runs one transaction at a time and can be reused for the next. Every wait has a deadline,
// and a failure says whether the server can have accepted the message, which decides whether a retry is
// safe (never) or the caller must answer 4xx.
// Hand-written rather than an SMTP client library: it must write the very bytes the filter received (BDAT
// sends the message Buffer itself, DATA stuffed slices of it; no copy either way), send all recipients or none,
// pipeline the envelope, and return the server's reply itself, so the filter can pass it back to Postfix
// unchanged.
// See docs/decisions.md, 'Hand-written protocol code'; figures from `npm run bench -- filtermail` in
// docs/daemons.md, 'Encryption filter'.

import * as net from "node:net";
import { stuffedSlices } from "./data";
import { Deadline } from "./deadline";
import { isPositive, replyText, type Reply } from "./reply";
import { ReplyReader } from "./reply-reader";

export interface ClientOptions {
  host: string;
  port: number;
  /** Source address to connect from (the incoming filter uses 127.0.0.2, see docs/relay.md, 'OpenDKIM'). */
  localAddress?: string;
  /** Name sent in EHLO. */
  heloName: string;
  /** Deadline for connecting and for each command reply. */
  commandTimeoutMs: number;
  /** Deadline for the reply to the end of the message (the server may run milters first). */
  dataTimeoutMs: number;
}

export interface Transaction {
  mailFrom: string;
  /** ESMTP parameters for MAIL FROM, already filtered to what the server supports. */
  mailParams: string[];
  rcptTos: readonly string[];
  message: Buffer;
}

/** How a transaction ended without an exception. */
export interface TransactionResult {
  /** The server's final answer: the end-of-data reply, or the first refusal before it. */
  reply: Reply;
  /** True when the server took the message (a 2xx reply to the end of data). */
  accepted: boolean;
}

/** A connection failed. `messageSent` tells whether the server may hold the message now. */
export class SmtpClientError extends Error {
  constructor(
    message: string,
    readonly messageSent: boolean,
  ) {
    super(message);
  }
}

export class SmtpClientConnection {
  private readonly reader = new ReplyReader();
  /** Replies waited for, oldest first; only the oldest has a deadline running (one timer per connection). */
  private waiting: { resolve(r: Reply): void; reject(e: Error): void; timeoutMs: number; what: string }[] =
    [];
  private readonly deadline = new Deadline(() => {
    const w = this.waiting[0];
    if (w) this.fail(new Error(`no reply to ${w.what} within ${w.timeoutMs} ms`));
  });
  private early: Reply[] = [];
  private failure: Error | undefined;
  /** ESMTP keywords the server announced in its EHLO reply, upper-cased. */
  capabilities = new Set<string>();
  /** False once the connection must not carry another transaction. */
  reusable = true;

  private constructor(
    private readonly socket: net.Socket,
    private readonly opts: ClientOptions,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      let replies: Reply[];
      try {
        replies = this.reader.push(chunk);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      for (const r of replies) {
        const w = this.waiting.shift();
        if (w) w.resolve(r);
        else this.early.push(r);
      }
      if (replies.length === 0) return;
      // The next reply waited for gets its own full time; partial lines do not extend it.
      const next = this.waiting[0];
      if (next) this.deadline.start(next.timeoutMs);
      else this.deadline.stop();
    });
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("connection closed by server")));
  }

  static async connect(opts: ClientOptions): Promise<SmtpClientConnection> {
    const socket = net.connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress });
    const conn = new SmtpClientConnection(socket, opts);
    try {
      const greeting = await conn.next(opts.commandTimeoutMs, "greeting");
      if (greeting.code !== 220) throw new SmtpClientError(`greeting ${replyText(greeting)}`, false);
      socket.write(`EHLO ${opts.heloName}\r\n`);
      const ehlo = await conn.next(opts.commandTimeoutMs, "EHLO");
      if (ehlo.code !== 250) throw new SmtpClientError(`EHLO answered ${replyText(ehlo)}`, false);
      conn.capabilities = new Set(ehlo.lines.slice(1).map((l) => l.split(" ")[0].toUpperCase()));
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** Usable for a new transaction: open, and the server has not said anything unasked (such as a 421 before closing). */
  get alive(): boolean {
    return this.failure === undefined && !this.socket.destroyed && this.early.length === 0;
  }

  /**
   * Runs MAIL, RCPT..., DATA and the message. All recipients or none: if the server refuses any recipient,
   * the message is not sent at all and that refusal is returned, so a message never reaches only some of its
   * recipients while the upstream client is told it failed.
   */
  async send(t: Transaction): Promise<TransactionResult> {
    if (this.failure) throw new SmtpClientError(this.failure.message, false);
    const { commandTimeoutMs, dataTimeoutMs } = this.opts;
    const params = t.mailParams.length > 0 ? ` ${t.mailParams.join(" ")}` : "";
    const commands = [
      `MAIL FROM:<${t.mailFrom}>${params}\r\n`,
      ...t.rcptTos.map((r) => `RCPT TO:<${r}>\r\n`),
    ];
    const pipelining = this.capabilities.has("PIPELINING");
    if (pipelining && this.capabilities.has("CHUNKING") && t.rcptTos.length === 1)
      return this.sendChunked(commands, t.message);
    // With PIPELINING the whole envelope plus DATA goes out in one write (RFC 2920); without it, one by one.
    const replies: Reply[] = [];
    if (pipelining) {
      this.socket.write(commands.join("") + "DATA\r\n");
      for (let i = 0; i <= commands.length; i++) {
        try {
          replies.push(await this.next(commandTimeoutMs, "envelope"));
        } catch (err) {
          // A server may hang up right after refusing MAIL or RCPT; the refusal is the answer then.
          if (replies.some((r) => !isPositive(r))) break;
          throw err;
        }
      }
    } else {
      for (const c of commands) {
        this.socket.write(c);
        const r = await this.next(commandTimeoutMs, "envelope");
        replies.push(r);
        if (!isPositive(r)) break;
      }
      if (replies.every(isPositive)) {
        this.socket.write("DATA\r\n");
        replies.push(await this.next(commandTimeoutMs, "DATA"));
      }
    }
    const refused = replies.slice(0, commands.length).find((r) => !isPositive(r));
    const dataReply = replies[commands.length];
    if (refused) {
      // If DATA was accepted anyway (some recipient passed), leaving without the end marker makes the server
      // drop the transaction. Either way this connection is finished.
      this.reusable = false;
      this.quit();
      return { reply: refused, accepted: false };
    }
    if (dataReply.code !== 354) {
      this.reusable = false;
      this.quit();
      return { reply: dataReply, accepted: false };
    }
    this.socket.cork();
    for (const slice of stuffedSlices(t.message)) this.socket.write(slice);
    this.socket.uncork();
    let final: Reply;
    try {
      final = await this.next(dataTimeoutMs, "end of data");
    } catch (err) {
      throw new SmtpClientError((err as Error).message, true);
    }
    if (!isPositive(final)) this.reusable = false;
    return { reply: final, accepted: isPositive(final) };
  }

  /**
   * One recipient, and the server does PIPELINING and CHUNKING: MAIL, RCPT, BDAT LAST and the message go out in
   * one write, and the three replies come back together (RFC 3030, RFC 2920). That saves DATA's round trip and
   * its dot-stuffing, and the server gets the very bytes of `message`. All or none still holds: with its only
   * recipient refused, the server refuses the chunk too.
   */
  private async sendChunked(commands: string[], message: Buffer): Promise<TransactionResult> {
    const { commandTimeoutMs, dataTimeoutMs } = this.opts;
    this.socket.cork();
    this.socket.write(`${commands.join("")}BDAT ${message.length} LAST\r\n`);
    this.socket.write(message);
    this.socket.uncork();
    const replies: Reply[] = [];
    let final: Reply;
    try {
      for (let i = 0; i < commands.length; i++) replies.push(await this.next(commandTimeoutMs, "envelope"));
      final = await this.next(dataTimeoutMs, "end of data");
    } catch (err) {
      // A refusal before the failure means the server cannot have the message; otherwise it may.
      const refused = replies.find((r) => !isPositive(r));
      if (refused) {
        this.reusable = false;
        return { reply: refused, accepted: false };
      }
      throw new SmtpClientError((err as Error).message, true);
    }
    const refused = replies.find((r) => !isPositive(r));
    if (refused || !isPositive(final)) {
      this.reusable = false;
      this.quit();
      return { reply: refused ?? final, accepted: false };
    }
    return { reply: final, accepted: true };
  }

  /** Ends the session politely; does not wait for the answer. */
  quit(): void {
    this.reusable = false;
    if (!this.socket.destroyed) {
      this.socket.end("QUIT\r\n");
      // The server answers 221 and closes; if it does not, do not keep the socket around.
      setTimeout(() => this.socket.destroy(), this.opts.commandTimeoutMs).unref();
    }
  }

  destroy(): void {
    this.reusable = false;
    this.socket.destroy();
  }

  /** Calls `cb` once when the connection goes away (used to drop idle pooled connections). */
  onGone(cb: () => void): void {
    this.socket.once("close", cb);
  }

  private next(timeoutMs: number, what: string): Promise<Reply> {
    if (this.failure) return Promise.reject(new SmtpClientError(this.failure.message, false));
    const early = this.early.shift();
    if (early) return Promise.resolve(early);
    return new Promise<Reply>((resolve, reject) => {
      if (this.waiting.length === 0) this.deadline.start(timeoutMs);
      this.waiting.push({ resolve, reject, timeoutMs, what });
    });
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.reusable = false;
    this.socket.destroy();
    this.deadline.dispose();
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(new SmtpClientError(this.failure.message, false));
  }
}
