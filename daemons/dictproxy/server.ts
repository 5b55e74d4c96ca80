// The Unix-socket listener the dict daemons (doveauth, lastlogin, metadata) share: accepts connections
// (connection.ts frames and orders each one's requests, commands.ts runs them) and shuts down cleanly.
// Python chatmaild ran a thread per connection; here one event loop serves all connections.
// Hand-written with protocol.ts (docs/daemons.md, 'Dict protocol'): the protocol is a few exact line formats on a
// Unix socket, and a lookup of an existing account is answered without leaving the event loop's turn. `npm run
// bench -- auth` measures it against a do-nothing server with the same client; see docs/decisions.md,
// 'Hand-written protocol code'.
import { chmodSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { DictCommands, type DictHandlers } from "./commands";
import { Connection, type ConnectionOwner } from "./connection";
import type { Logger } from "./log";
import type { Service } from "../service";

export type { DictHandlers } from "./commands";
export type { DictTransaction } from "./connection";
export { MAX_LINE_BYTES } from "./connection";

/**
 * Pending connections the kernel queues before accept. Python's default of 5 made Dovecot fail with
 * "net_connect_unix(...) failed: Resource temporarily unavailable" under load (chatmail/relay issue #436, PR #82);
 * upstream settled on 1000. The kernel caps it at net.core.somaxconn (4096 on Debian 12).
 */
export const LISTEN_BACKLOG = 4096;
/** How long close() lets in-flight requests finish before dropping connections. */
export const CLOSE_GRACE_MS = 2000;

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
class DictServer implements Service, ConnectionOwner {
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
