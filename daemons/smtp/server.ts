// A small SMTP server for trusted loopback peers (Postfix's smtpd_proxy_filter client): the listener, the
// connection limit and an orderly stop. Each connection is an SmtpSession (session.ts), which does framing,
// sequencing, limits and deadlines; what to do with a sender, a recipient or a message is decided by the
// handlers, so protocol and policy stay apart.
// Hand-written rather than an SMTP server library: as a proxy inside Postfix's own session it must keep the
// message's bytes exact (data.ts), hold each message once as one Buffer, hand the downstream reply back
// unchanged and bound every line, count, buffer and wait, and it needs nothing else of SMTP (no AUTH, no TLS).
// See docs/decisions.md, 'Hand-written protocol code', and docs/daemons.md, 'Encryption filter' for measurements.

import * as net from "node:net";
import { formatReply, reply } from "./reply";
import { SmtpSession, type SessionOptions, type SmtpHandlers } from "./session";

export type { Envelope, SessionInfo, SmtpHandlers } from "./session";

export interface SmtpServerOptions extends SessionOptions {
  host: string;
  port: number;
  maxConnections: number;
}

export interface SmtpServer {
  readonly port: number;
  close(): Promise<void>;
}

// After close(), connections still handing on a message get this long to finish.
const CLOSE_TIMEOUT_MS = 10_000;
// Postfix connects once per transaction and may open many at once (maxproc 5000 on submission); keep the
// accept queue long enough for bursts (same reasoning as upstream's request_queue_size = 1000).
const LISTEN_BACKLOG = 1024;

export async function startSmtpServer(opts: SmtpServerOptions, handlers: SmtpHandlers): Promise<SmtpServer> {
  const connections = new Set<SmtpSession>();
  let closing = false;
  const server = net.createServer((socket) => {
    if (closing || connections.size >= opts.maxConnections) {
      socket.on("error", () => undefined);
      socket.end(formatReply(reply(421, "4.3.2 Too many connections, try again later")));
      return;
    }
    const session = new SmtpSession(socket, opts, handlers, () => connections.delete(session));
    connections.add(session);
  });
  server.on("error", (err) => opts.log(`smtp server error: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.host, port: opts.port, backlog: LISTEN_BACKLOG }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    async close() {
      closing = true;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of connections) c.shutdown();
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref());
      const drained = (async () => {
        while (connections.size > 0) await new Promise((r) => setTimeout(r, 20));
      })();
      await Promise.race([drained, deadline]);
      for (const c of connections) c.destroy();
      await stopped;
    },
  };
}
