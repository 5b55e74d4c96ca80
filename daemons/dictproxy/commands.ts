// The dict commands: one request line of a connection, through the daemon's handlers, to the reply it is due
// (docs/daemons.md, 'Dict protocol'). Each daemon supplies only handlers (see DictHandlers).
import type { Connection, DictTransaction, LineRunner } from "./connection";
import type { Logger } from "./log";
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

/** Open transactions one connection may hold; Dovecot uses one or two at a time. */
export const MAX_TRANSACTIONS_PER_CONNECTION = 64;

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

type Request<K extends DictRequest["kind"]> = Extract<DictRequest, { kind: K }>;

/** The dict commands: one request line of a connection to the daemon's handlers and to the reply it is due. */
export class DictCommands implements LineRunner {
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
