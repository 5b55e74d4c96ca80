// One SMTP session of the server (server.ts): framing, sequencing, per-session limits and deadlines. Commands
// are handled strictly in order, which makes PIPELINING (RFC 2920) safe: while a message is being handed on,
// later input waits unread.
// Input is read only while the replies to earlier input are being taken by the peer: when the socket's
// output buffer is full the session stops reading (and stops handling already-read commands) until 'drain', so
// a peer that pipelines without reading costs one socket chunk of input and about one buffer of replies, not
// everything it manages to send.

import type * as net from "node:net";
import { parseCommand, parsePathArgument } from "./command";
import { DataReader } from "./data";
import { Deadline } from "./deadline";
import { MessageParts } from "./parts";
import { formatReply, reply, type Reply } from "./reply";

export interface Envelope {
  mailFrom: string;
  /** ESMTP parameters of MAIL FROM by upper-cased keyword (BODY, SMTPUTF8, SIZE...). */
  mailParams: Map<string, string>;
  rcptTos: string[];
}

export interface SessionInfo {
  remoteAddress: string;
}

export interface SmtpHandlers {
  /** Decides on MAIL FROM; undefined accepts with "250 OK". */
  onMailFrom(address: string, params: Map<string, string>): Reply | undefined;
  /** Decides on the message; the reply goes to the client as is. A throw answers 451. */
  onData(envelope: Envelope, message: Buffer, session: SessionInfo): Promise<Reply>;
}

export interface SessionOptions {
  /** Text after "220 " in the greeting and first line of the EHLO reply. */
  name: string;
  maxMessageBytes: number;
  /**
   * Time the client has for each command line, counted from when the server is ready for it, and for the
   * DATA section (plus what its size earns, MIN_DATA_BYTES_PER_S). A deadline, not an idle timer: bytes
   * trickling in do not extend it. A client that misses it gets 421 and is disconnected.
   */
  deadlineMs: number;
  log(line: string): void;
}

// RFC 5321 4.5.3.1.4 allows 512 octets per command line; SMTPUTF8 addresses and ESMTP parameters can make
// legitimate lines longer, so allow more, but a bounded amount.
const MAX_COMMAND_LINE_BYTES = 4096;
// Postfix's default smtpd_recipient_limit; the relay advertises 1000 recipients to clients too.
const MAX_RECIPIENTS = 1000;
// A peer sending this many unknown or malformed commands is not Postfix; stop talking to it (as smtp-server
// and Postfix's smtpd_hard_error_limit do).
const MAX_BAD_COMMANDS = 20;
// Each DATA byte received moves the deadline this much later: Postfix's smtpd_min_data_rate (500 bytes/s, used
// with smtpd_per_request_deadline), so a large message from a slow sender fits, while one byte now and then
// earns almost nothing. Postfix streams a remote client's message to us as it arrives, so this is its pace.
const MIN_DATA_BYTES_PER_S = 500;
// Replies collected while handling pipelined commands are written once they reach this size, so that a long
// pipeline meets the socket's backpressure (a write returning false) before it has built a big string.
const REPLY_BATCH_BYTES = 16 * 1024;
// A peer that does not close its side after our 221 or 421 must not keep the socket open.
const LINGER_MS = 1000;

const EMPTY = Buffer.alloc(0);
const OK = reply(250, "OK");

const enum Mode {
  Command,
  Data,
  /** Reading the counted bytes of a BDAT chunk (RFC 3030). */
  Chunk,
  /** A message is being decided on / handed on; input waits. */
  Busy,
  Closed,
}

export class SmtpSession {
  private mode = Mode.Command;
  private pending: Buffer = EMPTY;
  private discardingLongLine = false;
  private greeted = false;
  private envelope: Envelope | undefined;
  private reader: DataReader | undefined;
  /** The message of a BDAT transaction, chunk by chunk. */
  private chunks: MessageParts | undefined;
  /** The BDAT chunk being read: bytes still to come, whether it is the last, and the answer if refused. */
  private chunk = { left: 0, last: false, refusal: undefined as Reply | undefined };
  /** Replies not written yet. */
  private out = "";
  /** The socket's output buffer is full: nothing more is read or handled until 'drain'. */
  private blocked = false;
  private shuttingDown = false;
  private badCommands = 0;
  private readonly deadline = new Deadline(() => this.timedOut());

  constructor(
    private readonly socket: net.Socket,
    private readonly opts: SessionOptions,
    private readonly handlers: SmtpHandlers,
    onGone: () => void,
  ) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    socket.on("drain", () => this.onDrain());
    socket.on("error", () => this.destroy());
    socket.on("close", () => {
      this.release();
      onGone();
    });
    this.send(reply(220, opts.name));
    this.flush();
    this.deadline.start(opts.deadlineMs);
  }

  /** Server is stopping: an idle session ends now with 421, a busy one after its reply. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.mode !== Mode.Busy) {
      this.send(reply(421, "4.3.2 Service shutting down"));
      this.endSession();
    }
  }

  destroy(): void {
    this.release();
    this.socket.destroy();
  }

  /** Drops everything the session holds, so that a peer that left (or was thrown out) leaves no memory behind. */
  private release(): void {
    this.mode = Mode.Closed;
    this.pending = EMPTY;
    this.out = "";
    this.reader = undefined;
    this.chunks = undefined;
    this.envelope = undefined;
    this.deadline.dispose();
  }

  private timedOut(): void {
    if (this.mode === Mode.Busy || this.mode === Mode.Closed) return;
    this.send(reply(421, "4.4.2 Error: timeout exceeded"));
    this.endSession();
  }

  private onBytes(chunk: Buffer): void {
    switch (this.mode) {
      case Mode.Closed:
        return;
      case Mode.Data:
        this.onDataBytes(chunk);
        return;
      case Mode.Busy:
        // The client sent more before our answer (pipelining): keep it for later, and read nothing more until
        // the answer is out. Pausing only here spares the common case, a client that waits, two stream state
        // changes per message.
        this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
        this.socket.pause();
        return;
      case Mode.Command:
      case Mode.Chunk:
        this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
        this.processCommands();
    }
  }

  private onDrain(): void {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.mode === Mode.Command || this.mode === Mode.Chunk) this.processCommands();
    if (this.readsInput()) this.resumeInput();
  }

  private readsInput(): boolean {
    return this.mode === Mode.Command || this.mode === Mode.Data || this.mode === Mode.Chunk;
  }

  private resumeInput(): void {
    if (!this.blocked && this.socket.isPaused()) this.socket.resume();
  }

  private processCommands(): void {
    let handled = false;
    while (!this.blocked && (this.mode === Mode.Command || this.mode === Mode.Chunk)) {
      if (this.mode === Mode.Chunk) {
        if (this.pending.length === 0) break;
        this.readChunk();
        continue;
      }
      const lf = this.pending.indexOf(0x0a);
      if (lf < 0) {
        if (this.pending.length > MAX_COMMAND_LINE_BYTES) {
          if (!this.discardingLongLine) this.send(reply(500, "5.5.2 Line too long"));
          this.discardingLongLine = true;
          this.pending = EMPTY;
        }
        break;
      }
      const end = lf > 0 && this.pending[lf - 1] === 0x0d ? lf - 1 : lf;
      const tooLong = this.discardingLongLine || end > MAX_COMMAND_LINE_BYTES;
      const line = tooLong ? "" : this.pending.toString("utf8", 0, end);
      this.pending = lf + 1 === this.pending.length ? EMPTY : this.pending.subarray(lf + 1);
      handled = true;
      if (tooLong) {
        if (!this.discardingLongLine) this.send(reply(500, "5.5.2 Line too long"));
        this.discardingLongLine = false;
        continue;
      }
      try {
        this.handleCommand(line);
      } catch (err) {
        this.opts.log(`smtp: error handling a command: ${(err as Error).message}`);
        this.envelope = undefined;
        this.send(reply(451, "4.3.0 Local error"));
      }
      if (this.out.length >= REPLY_BATCH_BYTES) this.flush();
    }
    // While a message is handed on, the replies before it wait and go out with its answer: a pipelined
    // MAIL, RCPT, BDAT LAST gets its three replies in one write.
    if (this.mode !== Mode.Busy) this.flush();
    if (handled && this.mode === Mode.Command) this.deadline.start(this.opts.deadlineMs);
    if (this.mode === Mode.Data && this.pending.length > 0) {
      const rest = this.pending;
      this.pending = EMPTY;
      this.onDataBytes(rest);
    }
  }

  private handleCommand(line: string): void {
    const { verb, arg } = parseCommand(line);
    switch (verb) {
      case "EHLO":
        this.greeted = true;
        this.envelope = undefined;
        this.chunks = undefined;
        this.send(
          reply(
            250,
            this.opts.name,
            "PIPELINING",
            `SIZE ${this.opts.maxMessageBytes}`,
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
          ),
        );
        return;
      case "HELO":
        this.greeted = true;
        this.envelope = undefined;
        this.chunks = undefined;
        this.send(reply(250, this.opts.name));
        return;
      case "MAIL":
        return this.handleMail(arg);
      case "RCPT":
        return this.handleRcpt(arg);
      case "DATA":
        if (!this.envelope) return this.send(reply(503, "5.5.1 Error: need MAIL command"));
        if (this.chunks) return this.send(reply(503, "5.5.1 Error: BDAT in progress"));
        if (this.envelope.rcptTos.length === 0)
          return this.send(reply(503, "5.5.1 Error: need RCPT command"));
        this.reader = new DataReader(this.opts.maxMessageBytes);
        this.mode = Mode.Data;
        this.deadline.start(this.opts.deadlineMs);
        this.send(reply(354, "End data with <CR><LF>.<CR><LF>"));
        return;
      case "BDAT":
        return this.handleBdat(arg);
      case "RSET":
        this.envelope = undefined;
        this.chunks = undefined;
        return this.send(OK);
      case "NOOP":
        return this.send(OK);
      case "QUIT":
        this.send(reply(221, "OK"));
        this.endSession();
        return;
      default:
        this.badCommand(reply(500, "5.5.2 Command not recognized"));
    }
  }

  private handleMail(arg: string): void {
    if (!this.greeted) return this.send(reply(503, "5.5.1 Error: send HELO first"));
    if (this.envelope) return this.send(reply(503, "5.5.1 Error: nested MAIL command"));
    const path = parsePathArgument(arg, "FROM");
    if (!path) return this.send(reply(501, "5.5.4 Syntax: MAIL FROM:<address>"));
    const size = path.params.get("SIZE");
    if (size !== undefined && /^[0-9]+$/.test(size) && Number(size) > this.opts.maxMessageBytes) {
      return this.send(reply(552, "5.3.4 Message exceeds maximum size"));
    }
    const refusal = this.handlers.onMailFrom(path.address, path.params);
    if (refusal) return this.send(refusal);
    this.envelope = { mailFrom: path.address, mailParams: path.params, rcptTos: [] };
    this.send(OK);
  }

  private handleRcpt(arg: string): void {
    if (!this.envelope) return this.send(reply(503, "5.5.1 Error: need MAIL command"));
    // All RCPT TO parameters (NOTIFY=, ORCPT=...) are ignored, as upstream's filter does from chatmail/relay
    // 1.8.0 on (chatmaild/src/chatmaild/filtermail.py: Stalwart sends NOTIFY=DELAY,FAILURE).
    const path = parsePathArgument(arg, "TO");
    if (!path || path.address === "") return this.send(reply(501, "5.5.4 Syntax: RCPT TO:<address>"));
    if (this.envelope.rcptTos.length >= MAX_RECIPIENTS)
      return this.send(reply(452, "4.5.3 Error: too many recipients"));
    this.envelope.rcptTos.push(path.address);
    this.send(OK);
  }

  /**
   * BDAT <size> [LAST] (RFC 3030): the next <size> bytes are message, counted, without dot-stuffing. They are
   * read even when the command is refused, since the client sends them without waiting.
   */
  private handleBdat(arg: string): void {
    const m = /^([0-9]{1,15})( +LAST)? *$/i.exec(arg);
    if (!m) return this.badCommand(reply(501, "5.5.4 Syntax: BDAT size [LAST]"));
    let refusal: Reply | undefined;
    if (!this.envelope) refusal = reply(503, "5.5.1 Error: need MAIL command");
    else if (this.envelope.rcptTos.length === 0) refusal = reply(554, "5.5.1 Error: no valid recipients");
    else this.chunks ??= new MessageParts(this.opts.maxMessageBytes);
    this.chunk = { left: Number(m[1]), last: m[2] !== undefined, refusal };
    this.mode = Mode.Chunk;
    this.deadline.start(this.opts.deadlineMs);
    if (this.chunk.left === 0) this.chunkRead();
  }

  /** Moves the next bytes of the current BDAT chunk from `pending` into the message. */
  private readChunk(): void {
    const take = Math.min(this.chunk.left, this.pending.length);
    const bytes = take === this.pending.length ? this.pending : this.pending.subarray(0, take);
    this.pending = take === this.pending.length ? EMPTY : this.pending.subarray(take);
    this.chunk.left -= take;
    if (!this.chunk.refusal) this.chunks?.add(bytes);
    this.deadline.extend((take * 1000) / MIN_DATA_BYTES_PER_S);
    if (this.chunk.left === 0) this.chunkRead();
  }

  private chunkRead(): void {
    this.mode = Mode.Command;
    this.deadline.start(this.opts.deadlineMs);
    const { last, refusal } = this.chunk;
    const chunks = this.chunks;
    if (refusal || !chunks) return this.send(refusal ?? reply(503, "5.5.1 Error: need MAIL command"));
    if (chunks.tooBig || last) {
      this.chunks = undefined;
      void this.finishMessage(chunks);
      return;
    }
    this.send(reply(250, `2.0.0 ${chunks.bytes} octets received`));
  }

  private onDataBytes(chunk: Buffer): void {
    const reader = this.reader as DataReader;
    const { done, consumed } = reader.feed(chunk);
    if (!done) {
      this.deadline.extend((chunk.length * 1000) / MIN_DATA_BYTES_PER_S);
      return;
    }
    if (consumed < chunk.length) this.pending = chunk.subarray(consumed);
    this.reader = undefined;
    void this.finishMessage(reader);
  }

  /** The message is complete (or over the limit): the handler decides, then the session goes on. */
  private async finishMessage(message: DataReader | MessageParts): Promise<void> {
    this.mode = Mode.Busy;
    // The client waits for our answer now: no deadline for it while the downstream works, and its next
    // commands stay unread until the answer is out (onBytes pauses the socket if any arrive).
    this.deadline.stop();
    const envelope = this.envelope as Envelope;
    this.envelope = undefined;
    let answer: Reply;
    if (message.tooBig) {
      answer = reply(552, "5.3.4 Message exceeds maximum size");
    } else {
      try {
        answer = await this.handlers.onData(envelope, message.take(), {
          remoteAddress: this.socket.remoteAddress ?? "",
        });
      } catch (err) {
        this.opts.log(`smtp: error handling a message: ${(err as Error).message}`);
        answer = reply(451, "4.3.0 Local error");
      }
    }
    if (this.mode !== Mode.Busy) return; // the client went away meanwhile
    this.mode = Mode.Command;
    this.send(answer);
    if (this.shuttingDown) {
      this.send(reply(421, "4.3.2 Service shutting down"));
      this.endSession();
      return;
    }
    this.deadline.start(this.opts.deadlineMs);
    this.processCommands();
    if (this.readsInput()) this.resumeInput();
  }

  private badCommand(r: Reply): void {
    this.send(r);
    if (++this.badCommands >= MAX_BAD_COMMANDS) {
      this.send(reply(421, "4.7.0 Too many errors"));
      this.endSession();
    }
  }

  private send(r: Reply): void {
    this.out += formatReply(r);
  }

  /** Writes the replies collected so far in one write; a full output buffer stops reading until 'drain'. */
  private flush(): void {
    if (this.out.length === 0 || this.socket.destroyed) return;
    const out = this.out;
    this.out = "";
    if (!this.socket.write(out)) {
      this.blocked = true;
      this.socket.pause();
    }
  }

  private endSession(): void {
    this.flush();
    this.release();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }
}
