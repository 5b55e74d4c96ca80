// A small, strict HTTP/1.1 responder on node:net for chatmaild's two HTTP endpoints: GET /metrics (metrics/) and
// POST /new (newaccount/). It replaces node:http, whose modules (the parser, agents, outgoing messages) cost
// chatmaild about 0.4 MiB of its idle memory for two endpoints that each answer one small request with one small
// body (docs/decisions.md, 'Our own HTTP/1.1 responder instead of node:http').
//
// One request per connection: every response says `Connection: close` and the server ends the socket after it.
// nginx's proxy_pass speaks HTTP/1.0 with a connection per request by default, and Prometheus asks once per scrape
// (15 s or more apart), so keep-alive would only keep idle sockets around. What the server does, in order:
//   - the head must arrive within headersTimeoutMs and be at most MAX_HEAD_BYTES; it is parsed strictly
//     (request.ts) and a bad one is answered with 400/413/431/501/505 before any handler runs;
//   - a body (Content-Length only, at most maxBodyBytes) is read and thrown away: no handler needs one;
//   - the handler answers { status, headers, body }; a throw or a rejection is a 500 and one log line with the
//     method and the path (never the query, which may be an invite token, nor any header);
//   - the whole request must be in within requestTimeoutMs (408), and the handler must answer by then (503);
//   - after the response the socket is ended and whatever the client still sends is read and dropped for up to
//     lingerMs, so the kernel does not answer unread data with a reset that could cost the client the response.
import { createServer, type Socket } from "node:net";
import type { Logger } from "../dictproxy/log";
import { FIELD_VALUE, HeadScanner, parseHead, TOKEN, type HeadError, type HttpRequest } from "./request";

export type { HttpRequest } from "./request";

export interface HttpResponse {
  status: number;
  /** Content-Length, Connection and Date are the server's; a handler setting one is a programming error. */
  headers?: Record<string, string>;
  /** A string is sent as UTF-8. Left out for HEAD requests, whose Content-Length is still this body's. */
  body?: string | Buffer;
}

export type HttpHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

export interface HttpServerOptions {
  /** Names the service in the listen error ("metrics", "newaccount"). */
  name: string;
  host: string;
  /** 0 picks a free port; see `port` on the result. */
  port: number;
  log: Logger;
  handle: HttpHandler;
  /** The head must be complete this long after the connection opened; idle connections go then too. */
  headersTimeoutMs?: number;
  /** The request must be complete, and the handler must have answered, this long after the connection opened. */
  requestTimeoutMs?: number;
  /** The largest body read (and dropped); a larger Content-Length is answered with 413. */
  maxBodyBytes?: number;
  /** How long a socket stays open after the response, to drain what the client still sends. */
  lingerMs?: number;
  /** Connections beyond this many are closed by the kernel listener at once (net.Server maxConnections). */
  maxConnections?: number;
}

export interface HttpServer {
  readonly port: number;
  /**
   * Stops listening, drops connections that have not sent anything, lets the others finish (within
   * requestTimeoutMs and lingerMs), and resolves when all are gone.
   */
  close(): Promise<void>;
}

const DEFAULTS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxBodyBytes: 64 * 1024,
  lingerMs: 2_000,
  maxConnections: 256,
};

type Settings = HttpServerOptions & typeof DEFAULTS;

/** The reason phrases of RFC 9110 for the statuses our handlers and this server use; others are refused. */
export const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

const SERVER_HEADERS = new Set(["content-length", "connection", "date", "transfer-encoding"]);

/**
 * The bytes of a response: status line, the handler's headers, Content-Length, Connection: close, Date, and the
 * body unless `omitBody` (HEAD). Throws on a status without a reason phrase here and on a header name or value
 * that would break the head (CR, LF and other controls): both are programming errors, answered with 500.
 */
export function responseBytes(res: HttpResponse, omitBody: boolean): Buffer {
  const reason = REASONS[res.status];
  if (reason === undefined) throw new Error(`status ${res.status} is not one this server sends`);
  const body = typeof res.body === "string" ? Buffer.from(res.body, "utf8") : (res.body ?? Buffer.alloc(0));
  let head = `HTTP/1.1 ${res.status} ${reason}\r\n`;
  for (const [name, value] of Object.entries(res.headers ?? {})) {
    if (!TOKEN.test(name) || SERVER_HEADERS.has(name.toLowerCase()))
      throw new Error(`response header name ${JSON.stringify(name)} not allowed`);
    if (!FIELD_VALUE.test(value)) throw new Error(`response header ${name}: value with a control character`);
    head += `${name}: ${value}\r\n`;
  }
  head += `Content-Length: ${body.length}\r\nConnection: close\r\nDate: ${new Date().toUTCString()}\r\n\r\n`;
  const bytes = Buffer.from(head, "latin1");
  return omitBody || body.length === 0 ? bytes : Buffer.concat([bytes, body]);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Starts listening; rejects, naming the service and the address, if it cannot (EADDRINUSE, EADDRNOTAVAIL). */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const settings: Settings = { ...DEFAULTS, ...options };
  const connections = new Set<Connection>();
  // allowHalfOpen: a client may shut down its sending side after the request and still read the answer.
  const listener = createServer({ allowHalfOpen: true }, (socket) => {
    const conn = new Connection(socket, settings, () => connections.delete(conn));
    connections.add(conn);
  });
  listener.maxConnections = settings.maxConnections;
  const where = settings.host.includes(":")
    ? `[${settings.host}]:${settings.port}`
    : `${settings.host}:${settings.port}`;
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) =>
      reject(
        Object.assign(new Error(`${settings.name}: cannot listen on ${where}: ${err.message}`), {
          code: err.code,
        }),
      );
    listener.once("error", fail);
    listener.listen({ host: settings.host, port: settings.port }, () => {
      listener.off("error", fail);
      resolve();
    });
  });
  listener.on("error", (err) => settings.log.error(`listener: ${err.message}`));
  const address = listener.address();
  return {
    port: typeof address === "object" && address ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        // net.Server calls back once every connection is gone (also when it was closed before).
        listener.close(() => resolve());
        for (const conn of connections) if (conn.idle) conn.destroy();
      }),
  };
}

type Phase = "head" | "body" | "handling" | "lingering" | "closed";

/** One connection, one request: reads the head and body, runs the handler, answers, lingers, closes. */
class Connection {
  private phase: Phase = "head";
  private readonly scanner = new HeadScanner();
  /** The head's bytes so far (the chunks as they came; joined once the head is complete). */
  private chunks: Buffer[] = [];
  private bodyLeft = 0;
  private request: HttpRequest | undefined;
  private readonly requestDeadline: number;
  private timer: NodeJS.Timeout;
  private readonly remoteAddress: string | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly settings: Settings,
    forget: () => void,
  ) {
    this.remoteAddress = socket.remoteAddress;
    this.requestDeadline = Date.now() + settings.requestTimeoutMs;
    this.timer = setTimeout(
      () => this.timedOut(),
      Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs),
    );
    socket.on("data", (chunk: Buffer) => this.received(chunk));
    socket.on("end", () => this.ended());
    socket.on("error", (err) => {
      settings.log.debug(`connection from ${this.remoteAddress}: ${err.message}`);
      socket.destroy();
    });
    socket.on("close", () => {
      this.phase = "closed";
      clearTimeout(this.timer);
      forget();
    });
  }

  /** Whether nothing has arrived yet: such a connection can be dropped on close() without losing a request. */
  get idle(): boolean {
    return this.phase === "head" && this.scanner.length === 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private received(chunk: Buffer): void {
    if (this.phase === "head") {
      const end = this.scanner.scan(chunk);
      if (typeof end !== "number") return this.refuse(end);
      if (end === -1) {
        this.chunks.push(chunk);
        return;
      }
      this.chunks.push(chunk.subarray(0, end));
      const parsed = parseHead(Buffer.concat(this.chunks), this.remoteAddress, this.settings.maxBodyBytes);
      this.chunks = [];
      if ("status" in parsed) return this.refuse(parsed);
      this.request = parsed.request;
      this.bodyLeft = parsed.bodyLength;
      this.phase = "body";
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.timedOut(), Math.max(0, this.requestDeadline - Date.now()));
      // curl and others wait (about a second) for this before sending a body; node:http sends it too.
      const expect = parsed.request.headers["expect"];
      if (
        this.bodyLeft > 0 &&
        end === chunk.length &&
        parsed.request.version === "1.1" &&
        expect?.toLowerCase() === "100-continue"
      )
        this.socket.write("HTTP/1.1 100 Continue\r\n\r\n");
      chunk = chunk.subarray(end);
    }
    if (this.phase === "body") {
      // Only the body's length is counted; bytes beyond it (a pipelined request) are dropped with the rest.
      this.bodyLeft -= Math.min(this.bodyLeft, chunk.length);
      if (this.bodyLeft === 0) this.dispatch();
    }
    // handling, lingering: dropped unread.
  }

  private ended(): void {
    switch (this.phase) {
      case "head":
        if (this.scanner.length === 0) this.socket.destroy();
        else this.refuse({ status: 400, why: "connection ended inside the request head" });
        return;
      case "body":
        this.refuse({ status: 400, why: "connection ended inside the request body" });
        return;
      case "lingering":
        this.socket.destroySoon(); // once the response is flushed
        return;
      default: // handling: the client may still read the answer, which ends our side
    }
  }

  private timedOut(): void {
    switch (this.phase) {
      case "head":
        if (this.scanner.length === 0) this.socket.destroy();
        else this.refuse({ status: 408, why: "request head not complete in time" });
        return;
      case "body":
        this.refuse({ status: 408, why: "request body not complete in time" });
        return;
      case "handling": {
        const req = this.request!;
        this.settings.log.warn(
          `${req.method} ${req.path}: no answer within ${this.settings.requestTimeoutMs} ms`,
        );
        this.send(responseBytes({ status: 503 }, req.method === "HEAD"));
        return;
      }
      default: // lingering: time is up
        this.socket.destroy();
    }
  }

  private refuse(err: HeadError): void {
    this.settings.log.debug(`refused a request from ${this.remoteAddress}: ${err.status} ${err.why}`);
    this.send(responseBytes({ status: err.status }, false));
  }

  private dispatch(): void {
    this.phase = "handling";
    const req = this.request!;
    let result: HttpResponse | Promise<HttpResponse>;
    try {
      result = this.settings.handle(req);
    } catch (err) {
      this.fail(err);
      return;
    }
    Promise.resolve(result).then(
      (res) => {
        if (this.phase !== "handling") return; // timed out, or the client went away
        let bytes: Buffer;
        try {
          bytes = responseBytes(res, req.method === "HEAD");
        } catch (err) {
          this.fail(err);
          return;
        }
        this.send(bytes);
      },
      (err: unknown) => this.fail(err),
    );
  }

  /** A handler that threw or rejected: 500, logged without the query or headers (invite tokens live there). */
  private fail(err: unknown): void {
    if (this.phase !== "handling") return;
    const req = this.request!;
    this.settings.log.error(`${req.method} ${req.path}: ${errorText(err)}`);
    this.send(responseBytes({ status: 500 }, req.method === "HEAD"));
  }

  /** Writes the response, ends our side, and keeps draining the client's side for up to lingerMs. */
  private send(bytes: Buffer): void {
    if (this.phase === "closed") return;
    this.phase = "lingering";
    this.chunks = [];
    clearTimeout(this.timer);
    this.socket.end(bytes);
    // The client had already ended its side: nothing to drain, close once the response is flushed.
    if (this.socket.readableEnded) this.socket.destroySoon();
    else this.timer = setTimeout(() => this.timedOut(), this.settings.lingerMs);
  }
}
