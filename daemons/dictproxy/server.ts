// The Unix-socket server the dict daemons (doveauth, lastlogin, metadata) share: framing, limits, per-connection
// transactions, strict in-order replies and shutdown. Each daemon supplies only handlers (see DictHandlers).
// Python chatmaild ran a thread per connection; here one event loop serves all connections, and each connection's
// requests are answered strictly in order because Dovecot pairs replies with requests by position.
import { chmodSync, unlinkSync } from "node:fs";
import { createServer, type Socket } from "node:net";
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

interface Connection {
  readonly id: number;
  readonly socket: Socket;
  buffer: string;
  readonly queue: string[];
  busy: boolean;
  ended: boolean;
  readonly transactions: Map<string, DictTransaction>;
}

type CommandHandler<K extends DictRequest["kind"]> = (
  conn: Connection,
  req: Extract<DictRequest, { kind: K }>,
) => Promise<void> | void;

/** Starts a dict server on a Unix socket; resolves once it listens. */
export async function startDictServer(opts: DictServerOptions): Promise<Service> {
  const { handlers, log } = opts;
  const connections = new Set<Connection>();
  let nextId = 1;
  let closing = false;

  // The one way an answer leaves the server; traces carry the status letter only, since values hold hashes.
  const reply = (conn: Connection, line: string): void => {
    if (log.debugEnabled)
      log.debug(`conn ${conn.id} reply ${line[0] === "\n" ? "<end>" : line[0]} (${line.length} bytes)`);
    if (!conn.socket.destroyed) conn.socket.write(line);
  };

  const requireTransaction = (conn: Connection, tid: string): DictTransaction => {
    const tx = conn.transactions.get(tid);
    if (!tx) throw new DictProtocolError(`unknown transaction id ${JSON.stringify(tid)}`);
    return tx;
  };

  const commands: { [K in DictRequest["kind"]]: CommandHandler<K> } = {
    hello: () => {},
    lookup: (conn, req) => {
      // Most lookups are answered synchronously (an existing account is one small file read); no promise then.
      const result = handlers.lookup(req.key, req.user);
      if (!(result instanceof Promise)) return reply(conn, formatLookupReply(result));
      return result.then((r) => reply(conn, formatLookupReply(r)));
    },
    iterate: async (conn, req) =>
      reply(conn, formatIterateReply(handlers.iterate ? await handlers.iterate(req.path, req.user) : [])),
    begin: (conn, req) => {
      if (conn.transactions.size >= MAX_TRANSACTIONS_PER_CONNECTION && !conn.transactions.has(req.tid)) {
        throw new DictProtocolError(`more than ${MAX_TRANSACTIONS_PER_CONNECTION} open transactions`);
      }
      // Transactions live on the connection: Dovecot reuses ids such as "1" on different connections.
      conn.transactions.set(req.tid, { user: req.user, ok: true });
    },
    set: async (conn, req) => {
      const tx = requireTransaction(conn, req.tid);
      const ok = handlers.set ? await handlers.set(tx, req.key, req.value) : false;
      if (!ok) {
        tx.ok = false;
        log.error(`dictproxy-set failed for ${JSON.stringify(tx.user)}: key ${JSON.stringify(req.key)}`);
      }
    },
    unset: (conn, req) => {
      // Nothing here is deleted through the dict (a client clearing /private/devicetoken sends U). Upstream
      // ignored U and its commit still answered O, so clients never saw an error; we keep that.
      requireTransaction(conn, req.tid);
      log.warn(`unset ignored: ${JSON.stringify(req.key)}`);
    },
    commit: (conn, req) => {
      const tx = conn.transactions.get(req.tid);
      conn.transactions.delete(req.tid);
      if (!tx) log.warn(`commit of unknown transaction ${JSON.stringify(req.tid)}`);
      reply(conn, formatCommitReply(tx?.ok ?? false));
    },
    rollback: (conn, req) => {
      conn.transactions.delete(req.tid);
    },
    unknown: (_conn, req) => log.warn(`unknown dictproxy request: ${JSON.stringify(req.command)}`),
  };

  const failed = (conn: Connection, line: string, err: unknown): void => {
    const what = err instanceof DictProtocolError ? err.message : `exception in the handler: ${String(err)}`;
    log.error(`conn ${conn.id}: ${what} (command ${JSON.stringify(line[0] ?? "")}, ${line.length} bytes)`);
    if (!(err instanceof DictProtocolError)) log.debug(String((err as Error).stack));
    // Commands that wait for a line still get one, so Dovecot reports an error instead of timing out.
    if (COMMANDS_WITH_REPLY.has(line[0] ?? "")) reply(conn, "F\n");
  };

  /** Runs one request; returns a promise only when its handler went asynchronous. */
  const dispatch = (conn: Connection, line: string): Promise<void> | void => {
    try {
      const req = parseRequest(line);
      const pending = (commands[req.kind] as CommandHandler<typeof req.kind>)(conn, req as never);
      if (pending instanceof Promise) return pending.catch((err: unknown) => failed(conn, line, err));
    } catch (err) {
      failed(conn, line, err);
    }
  };

  const finish = (conn: Connection): void => {
    if (!conn.socket.destroyed) conn.socket.end();
  };

  const drain = async (conn: Connection): Promise<void> => {
    if (conn.busy) return;
    conn.busy = true;
    while (conn.queue.length > 0 && !conn.socket.destroyed) {
      const line = conn.queue.shift() as string;
      if (line === "") {
        // An empty line ends the conversation, as in upstream chatmaild.
        conn.queue.length = 0;
        conn.ended = true;
        break;
      }
      const pending = dispatch(conn, line);
      if (pending) await pending;
      if (conn.queue.length < MAX_QUEUED_LINES / 2 && conn.socket.isPaused()) conn.socket.resume();
    }
    conn.busy = false;
    if (conn.ended || closing) finish(conn);
  };

  const onConnection = (socket: Socket): void => {
    const conn: Connection = {
      id: nextId++,
      socket,
      buffer: "",
      queue: [],
      busy: false,
      ended: false,
      transactions: new Map(),
    };
    connections.add(conn);
    socket.setEncoding("utf8"); // the decoder keeps multi-byte characters split across chunks intact
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on("data", (chunk: string) => {
      conn.buffer += chunk;
      let nl: number;
      while ((nl = conn.buffer.indexOf("\n")) !== -1) {
        conn.queue.push(withoutCr(conn.buffer.slice(0, nl)));
        conn.buffer = conn.buffer.slice(nl + 1);
      }
      // Characters, not bytes, but a UTF-8 character is at least one byte, so no longer line gets through.
      if (conn.buffer.length > MAX_LINE_BYTES) {
        log.error(`conn ${conn.id}: request line longer than ${MAX_LINE_BYTES} bytes; closing connection`);
        socket.destroy();
        return;
      }
      if (conn.queue.length >= MAX_QUEUED_LINES) socket.pause();
      void drain(conn);
    });
    socket.on("end", () => {
      // A last line without LF still counts (Dovecot's peers and upstream's tests send one).
      if (conn.buffer.length > 0) conn.queue.push(withoutCr(conn.buffer));
      conn.buffer = "";
      conn.ended = true;
      void drain(conn);
    });
    socket.on("error", (err) => log.debug(`conn ${conn.id}: ${err.message}`));
    socket.on("close", () => {
      // A client gone mid-transaction leaves nothing behind: sets were applied as they came, the rest is dropped.
      if (conn.transactions.size > 0)
        log.info(`conn ${conn.id} closed with ${conn.transactions.size} open transaction(s)`);
      connections.delete(conn);
    });
  };

  const server = createServer({ allowHalfOpen: true }, onConnection);
  try {
    unlinkSync(opts.socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ path: opts.socketPath, backlog: LISTEN_BACKLOG }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => log.error(`listener: ${err.message}`));
  if (opts.socketMode !== undefined) chmodSync(opts.socketPath, opts.socketMode);

  return {
    async close(): Promise<void> {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const conn of connections) if (!conn.busy) finish(conn);
      const force = setTimeout(() => {
        for (const conn of connections) conn.socket.destroy();
      }, CLOSE_GRACE_MS);
      force.unref();
      await stopped;
      clearTimeout(force);
    },
  };
}

/** A request line without the CR some clients put before LF. */
function withoutCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
