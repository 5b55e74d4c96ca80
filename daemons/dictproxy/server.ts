// The Unix-socket server the dict daemons (doveauth, lastlogin, metadata) share: framing, limits, per-connection
// transactions, strict in-order replies and shutdown. Each daemon supplies only handlers (see DictHandlers).
// Python chatmaild ran a thread per connection; here one event loop serves all connections, and each connection's
// requests are answered strictly in order because Dovecot pairs replies with requests by position.
// Hand-written with protocol.ts (docs/daemons.md, 'Dict protocol'): the protocol is a few exact line formats on a
// Unix socket, and a lookup of an existing account is answered without leaving the event loop's turn. Measured
// with `npm run bench -- auth` on 2 cores, doveauth answers 17268 passdb lookups/s on 16 connections, where a
// do-nothing Node server reaches 76897/s with the same client. See docs/decisions.md, 'Hand-written protocol
// code'.
import { chmodSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "./log";
import type { Service } from "../service";
import {
  COMMANDS_WITH_REPLY,
  DictProtocolError,
  formatCommitReply,
  formatIterateReply,
  formatLookupReply,
  parseRequest,
  type DictRequest,
  type LookupResult,
} from "./protocol";

/**
 * Pending connections the kernel queues before accept. Python's default of 5 made Dovecot fail with
 * "net_connect_unix(...) failed: Resource temporarily unavailable" under load (chatmail/relay issue #436, PR #82);
 * upstream settled on 1000. The kernel caps it at net.core.somaxconn (4096 on Debian 12).
 */
export const LISTEN_BACKLOG = 4096;
/** Longest request line accepted; passdb keys carry a password, so allow generous but bounded lines. */
export const MAX_LINE_BYTES = 64 * 1024;
/** Requests read ahead of processing before the socket is paused (a client may pipeline). */
export const MAX_QUEUED_LINES = 256;
/** Open transactions one connection may hold; Dovecot uses one or two at a time. */
export const MAX_TRANSACTIONS_PER_CONNECTION = 64;
/** An idle connection is closed after this long; Dovecot reconnects when it needs the dict again. */
export const IDLE_TIMEOUT_MS = 60 * 60 * 1000;
/** How long close() lets in-flight requests finish before dropping connections. */
export const CLOSE_GRACE_MS = 2000;

/** A transaction opened by `B`, applied by `S` as it arrives (upstream semantics), answered at `C`. */
export interface DictTransaction {
  readonly user: string;
  ok: boolean;
}

export interface DictHandlers {
  lookup(key: string, user: string | undefined): LookupResult | Promise<LookupResult>;
  /** Rows for `I`; the default is none (just the end line). */
  iterate?(
    path: string,
    user: string | undefined,
  ): Iterable<readonly [string, string]> | Promise<Iterable<readonly [string, string]>>;
  /** Applies one `S`; false marks the transaction failed, so its commit answers F. */
  set?(tx: DictTransaction, key: string, value: string): boolean | Promise<boolean>;
}

export interface DictServerOptions {
  socketPath: string;
  handlers: DictHandlers;
  log: Logger;
  /** chmod for the socket file after listen (systemd's UMask decides otherwise). */
  socketMode?: number;
}

/** Starts a dict server on a Unix socket; resolves once it listens. */
export async function startDictServer(opts: DictServerOptions): Promise<Service> {
  const server = new DictServer(opts);
  await server.listen();
  return server;
}

/** The listener: accepts connections, and on close() lets the busy ones finish for up to CLOSE_GRACE_MS. */
class DictServer implements Service {
  private readonly listener: Server;
  private readonly commands: DictCommands;
  private readonly connections = new Set<Connection>();
  private nextId = 1;
  private stopping = false;

  constructor(private readonly opts: DictServerOptions) {
    this.commands = new DictCommands(opts.handlers, opts.log);
    this.listener = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get closing(): boolean {
    return this.stopping;
  }

  async listen(): Promise<void> {
    removeStaleSocket(this.opts.socketPath);
    await new Promise<void>((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen({ path: this.opts.socketPath, backlog: LISTEN_BACKLOG }, () => {
        this.listener.off("error", reject);
        resolve();
      });
    });
    this.listener.on("error", (err) => this.opts.log.error(`listener: ${err.message}`));
    if (this.opts.socketMode !== undefined) chmodSync(this.opts.socketPath, this.opts.socketMode);
  }

  async close(): Promise<void> {
    this.stopping = true;
    const stopped = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    for (const conn of this.connections) conn.endWhenIdle();
    const force = setTimeout(() => {
      for (const conn of this.connections) conn.destroy();
    }, CLOSE_GRACE_MS);
    force.unref();
    await stopped;
    clearTimeout(force);
  }

  forget(conn: Connection): void {
    this.connections.delete(conn);
  }

  private accept(socket: Socket): void {
    this.connections.add(new Connection(this.nextId++, socket, this.commands, this.opts.log, this));
  }
}

/** A socket path left behind by an earlier run is removed before listening; anything else wrong is thrown. */
function removeStaleSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/** One client: splits its input into request lines and runs them one at a time, in the order they came. */
class Connection {
  /** Transactions live on the connection: Dovecot reuses ids such as "1" on different connections. */
  readonly transactions = new Map<string, DictTransaction>();
  private buffer = "";
  private readonly queue: string[] = [];
  private busy = false;
  private ended = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly commands: DictCommands,
    private readonly log: Logger,
    private readonly server: DictServer,
  ) {
    socket.setEncoding("utf8"); // the decoder keeps multi-byte characters split across chunks intact
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("end", () => this.onEnd());
    socket.on("error", (err) => log.debug(`conn ${id}: ${err.message}`));
    socket.on("close", () => this.onClose());
  }

  /** The one way an answer leaves the server; traces carry the status letter only, since values hold hashes. */
  reply(line: string): void {
    if (this.log.debugEnabled)
      this.log.debug(`conn ${this.id} reply ${line[0] === "\n" ? "<end>" : line[0]} (${line.length} bytes)`);
    if (!this.socket.destroyed) this.socket.write(line);
  }

  /** The server is stopping: an idle connection ends now, a busy one after its queue (see drain). */
  endWhenIdle(): void {
    if (!this.busy) this.finish();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf("\n")) !== -1) {
      this.queue.push(withoutCr(this.buffer.slice(0, nl)));
      this.buffer = this.buffer.slice(nl + 1);
    }
    // Characters, not bytes, but a UTF-8 character is at least one byte, so no longer line gets through.
    if (this.buffer.length > MAX_LINE_BYTES) {
      this.log.error(`conn ${this.id}: request line longer than ${MAX_LINE_BYTES} bytes; closing connection`);
      this.socket.destroy();
      return;
    }
    if (this.queue.length >= MAX_QUEUED_LINES) this.socket.pause();
    void this.drain();
  }

  private onEnd(): void {
    // A last line without LF still counts (Dovecot's peers and upstream's tests send one).
    if (this.buffer.length > 0) this.queue.push(withoutCr(this.buffer));
    this.buffer = "";
    this.ended = true;
    void this.drain();
  }

  private onClose(): void {
    // A client gone mid-transaction leaves nothing behind: sets were applied as they came, the rest is dropped.
    if (this.transactions.size > 0)
      this.log.info(`conn ${this.id} closed with ${this.transactions.size} open transaction(s)`);
    this.server.forget(this);
  }

  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    while (this.queue.length > 0 && !this.socket.destroyed) {
      const line = this.queue.shift() as string;
      if (line === "") {
        // An empty line ends the conversation, as in upstream chatmaild.
        this.queue.length = 0;
        this.ended = true;
        break;
      }
      const pending = this.commands.run(this, line);
      if (pending) await pending;
      if (this.queue.length < MAX_QUEUED_LINES / 2 && this.socket.isPaused()) this.socket.resume();
    }
    this.busy = false;
    if (this.ended || this.server.closing) this.finish();
  }

  private finish(): void {
    if (!this.socket.destroyed) this.socket.end();
  }
}

type Request<K extends DictRequest["kind"]> = Extract<DictRequest, { kind: K }>;

/** The dict commands: one request line of a connection to the daemon's handlers and to the reply it is due. */
class DictCommands {
  constructor(
    private readonly handlers: DictHandlers,
    private readonly log: Logger,
  ) {}

  /** Runs one request; returns a promise only when its handler went asynchronous. */
  run(conn: Connection, line: string): Promise<void> | void {
    try {
      const pending = this.execute(conn, parseRequest(line));
      if (pending instanceof Promise) return pending.catch((err: unknown) => this.failed(conn, line, err));
    } catch (err) {
      this.failed(conn, line, err);
    }
  }

  private execute(conn: Connection, req: DictRequest): Promise<void> | void {
    switch (req.kind) {
      case "hello":
        return;
      case "lookup":
        return this.lookup(conn, req);
      case "iterate":
        return this.iterate(conn, req);
      case "begin":
        return this.begin(conn, req);
      case "set":
        return this.set(conn, req);
      case "unset":
        return this.unset(conn, req);
      case "commit":
        return this.commit(conn, req);
      case "rollback":
        conn.transactions.delete(req.tid);
        return;
      case "unknown":
        this.log.warn(`unknown dictproxy request: ${JSON.stringify(req.command)}`);
        return;
    }
  }

  private lookup(conn: Connection, req: Request<"lookup">): Promise<void> | void {
    // Most lookups are answered synchronously (an existing account is one small file read); no promise then.
    const result = this.handlers.lookup(req.key, req.user);
    if (!(result instanceof Promise)) return conn.reply(formatLookupReply(result));
    return result.then((r) => conn.reply(formatLookupReply(r)));
  }

  private async iterate(conn: Connection, req: Request<"iterate">): Promise<void> {
    const rows = this.handlers.iterate ? await this.handlers.iterate(req.path, req.user) : [];
    conn.reply(formatIterateReply(rows));
  }

  private begin(conn: Connection, req: Request<"begin">): void {
    if (conn.transactions.size >= MAX_TRANSACTIONS_PER_CONNECTION && !conn.transactions.has(req.tid)) {
      throw new DictProtocolError(`more than ${MAX_TRANSACTIONS_PER_CONNECTION} open transactions`);
    }
    conn.transactions.set(req.tid, { user: req.user, ok: true });
  }

  private async set(conn: Connection, req: Request<"set">): Promise<void> {
    const tx = this.transaction(conn, req.tid);
    const ok = this.handlers.set ? await this.handlers.set(tx, req.key, req.value) : false;
    if (!ok) {
      tx.ok = false;
      this.log.error(`dictproxy-set failed for ${JSON.stringify(tx.user)}: key ${JSON.stringify(req.key)}`);
    }
  }

  private unset(conn: Connection, req: Request<"unset">): void {
    // Nothing here is deleted through the dict (a client clearing /private/devicetoken sends U). Upstream
    // ignored U and its commit still answered O, so clients never saw an error; we keep that.
    this.transaction(conn, req.tid);
    this.log.warn(`unset ignored: ${JSON.stringify(req.key)}`);
  }

  private commit(conn: Connection, req: Request<"commit">): void {
    const tx = conn.transactions.get(req.tid);
    conn.transactions.delete(req.tid);
    if (!tx) this.log.warn(`commit of unknown transaction ${JSON.stringify(req.tid)}`);
    conn.reply(formatCommitReply(tx?.ok ?? false));
  }

  private transaction(conn: Connection, tid: string): DictTransaction {
    const tx = conn.transactions.get(tid);
    if (!tx) throw new DictProtocolError(`unknown transaction id ${JSON.stringify(tid)}`);
    return tx;
  }

  private failed(conn: Connection, line: string, err: unknown): void {
    const what = err instanceof DictProtocolError ? err.message : `exception in the handler: ${String(err)}`;
    this.log.error(
      `conn ${conn.id}: ${what} (command ${JSON.stringify(line[0] ?? "")}, ${line.length} bytes)`,
    );
    if (!(err instanceof DictProtocolError)) this.log.debug(String((err as Error).stack));
    // Commands that wait for a line still get one, so Dovecot reports an error instead of timing out.
    if (COMMANDS_WITH_REPLY.has(line[0] ?? "")) conn.reply("F\n");
  }
}

/** A request line without the CR some clients put before LF. */
function withoutCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
