// One dict client connection: cuts its input into request lines, runs them one at a time in the order they came,
// and sends the replies in that order (Dovecot pairs them with requests by position). It also bounds what a client
// can make the server hold: unparsed input (the socket is paused), unsent replies (no further request runs until
// the client takes them), and nothing at all once the conversation is over.
import type { Socket } from "node:net";
import type { Logger } from "./log";

/** Longest request line accepted; passdb keys carry a password, so allow generous but bounded lines. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Unparsed input beyond which the socket is paused until the queued requests have run. */
export const MAX_PENDING_INPUT_BYTES = 2 * MAX_LINE_BYTES;
/** Replies collected while running the requests of one read are written at once, at the latest at this size. */
const REPLY_BATCH_CHARS = 16 * 1024;
/** An idle connection is closed after this long; Dovecot reconnects when it needs the dict again. */
export const IDLE_TIMEOUT_MS = 60 * 60 * 1000;

const LF = 0x0a;
const CR = 0x0d;
const NOTHING: Buffer = Buffer.alloc(0);

/** Runs one request line; returns a promise only when the request went asynchronous. */
export interface LineRunner {
  run(conn: Connection, line: string): Promise<void> | void;
}

/** What the connection needs from its server: whether it is stopping, and to be forgotten once closed. */
export interface ConnectionOwner {
  readonly closing: boolean;
  forget(conn: Connection): void;
}

/** A transaction opened by `B`, applied by `S` as it arrives (upstream semantics), answered at `C`. */
export interface DictTransaction {
  readonly user: string;
  ok: boolean;
}

export class Connection {
  /** Transactions live on the connection: Dovecot reuses ids such as "1" on different connections. */
  readonly transactions = new Map<string, DictTransaction>();
  /** Received bytes; those before `start` are already cut into lines. */
  private input = NOTHING;
  private start = 0;
  /** Replies not yet handed to the socket, written once per batch of requests rather than once per reply. */
  private replies = "";
  /** A request is running asynchronously, or the connection waits for the client to take its replies. */
  private busy = false;
  private peerEnded = false;
  /** An empty line ended the conversation: nothing more is run, further input is read and dropped. */
  private over = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly runner: LineRunner,
    private readonly log: Logger,
    private readonly owner: ConnectionOwner,
  ) {
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("end", () => this.onEnd());
    socket.on("error", (err) => log.debug(`conn ${id}: ${err.message}`));
    socket.on("close", () => this.onClose());
  }

  /** The one way an answer leaves the server; traces carry the status letter only, since values hold hashes. */
  reply(line: string): void {
    if (this.log.debugEnabled)
      this.log.debug(`conn ${this.id} reply ${line[0] === "\n" ? "<end>" : line[0]} (${line.length} bytes)`);
    this.replies += line;
  }

  /** The server is stopping: an idle connection ends now, a busy one once its requests ran (see run). */
  endWhenIdle(): void {
    if (!this.busy) this.finish();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.over) return;
    if (this.start === this.input.length) this.input = chunk;
    else this.input = Buffer.concat([this.input.subarray(this.start), chunk]);
    this.start = 0;
    if (this.input.length > MAX_PENDING_INPUT_BYTES) this.socket.pause();
    this.run();
  }

  private onEnd(): void {
    this.peerEnded = true;
    this.run();
  }

  private onClose(): void {
    // A client gone mid-transaction leaves nothing behind: sets were applied as they came, the rest is dropped.
    if (this.transactions.size > 0)
      this.log.info(`conn ${this.id} closed with ${this.transactions.size} open transaction(s)`);
    this.owner.forget(this);
  }

  /** Runs the complete lines received so far, until one goes asynchronous or the client must take replies first. */
  private run(): void {
    if (this.busy) return;
    while (!this.over && !this.socket.destroyed) {
      if (this.socket.writableNeedDrain) return this.awaitDrain();
      const line = this.nextLine();
      if (line === undefined) break;
      if (line === "") {
        this.endConversation();
        break;
      }
      const pending = this.runner.run(this, line);
      if (pending) return this.awaitRequest(pending);
      if (this.replies.length >= REPLY_BATCH_CHARS) this.flush();
    }
    this.flush();
    if (this.over || this.socket.destroyed) return;
    const unparsed = this.input.length - this.start;
    if (unparsed > MAX_LINE_BYTES) {
      this.log.error(`conn ${this.id}: request line longer than ${MAX_LINE_BYTES} bytes; closing connection`);
      this.socket.destroy();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    if (this.peerEnded && unparsed > 0) return this.runLastLine();
    if (this.peerEnded || this.owner.closing) this.finish();
  }

  /** The next complete line without its LF (and a CR before it), or undefined when none is complete yet. */
  private nextLine(): string | undefined {
    const nl = this.input.indexOf(LF, this.start);
    if (nl === -1) return undefined;
    const end = nl > this.start && this.input[nl - 1] === CR ? nl - 1 : nl;
    const line = this.input.toString("utf8", this.start, end);
    this.start = nl + 1;
    if (this.start === this.input.length) {
      this.input = NOTHING;
      this.start = 0;
    }
    return line;
  }

  /** A last line without LF still counts (Dovecot's peers and upstream's tests send one). */
  private runLastLine(): void {
    this.input = Buffer.concat([this.input.subarray(this.start), Buffer.of(LF)]);
    this.start = 0;
    this.run();
  }

  private awaitRequest(pending: Promise<void>): void {
    this.busy = true;
    this.flush();
    void pending.then(() => {
      this.busy = false;
      this.run();
    });
  }

  /** The client has not taken the replies so far: run nothing more (and soon read nothing more) until it does. */
  private awaitDrain(): void {
    this.busy = true;
    this.flush();
    this.socket.once("drain", () => {
      this.busy = false;
      this.run();
    });
  }

  /** Hands the collected replies to the socket. */
  private flush(): void {
    if (this.replies === "" || this.socket.destroyed) return;
    const text = this.replies;
    this.replies = "";
    this.socket.write(text);
  }

  /** An empty line ends the conversation, as in upstream chatmaild. Input is still read, so the client's EOF is
   * seen and the socket closes; what comes after the empty line is dropped unrun. */
  private endConversation(): void {
    this.over = true;
    this.input = NOTHING;
    this.start = 0;
    this.flush();
    this.finish();
    this.socket.resume();
  }

  private finish(): void {
    if (!this.socket.destroyed) this.socket.end();
  }
}
