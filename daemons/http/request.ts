// The request head of our HTTP/1.1 responder (server.ts): finds where the head ends as bytes arrive and parses it
// strictly (RFC 9112). Anything node:http would accept only through a leniency, or that our two endpoints never
// receive from Prometheus, nginx or a client library, is refused: the listener may face the internet
// (metricsAddress), and a refusal is cheaper to reason about than a lenient reading.

/** The most bytes a request head may have, its final empty line included (node:http's default is 16 KiB). */
export const MAX_HEAD_BYTES = 8 * 1024;

export interface HttpRequest {
  method: string;
  /** The request target as sent: the path, then `?` and the query if there is one. */
  target: string;
  path: string;
  /** The raw query string, without the `?`; "" when there is none. */
  query: string;
  version: "1.0" | "1.1";
  /** Lowercase names; repeated fields joined with ", " as node:http does. No inherited keys. */
  headers: Record<string, string>;
  /** The peer's address; undefined if the socket was gone before the request was read. */
  remoteAddress: string | undefined;
}

/** A request the server refuses before any handler sees it: the status to answer and why (for a debug line). */
export interface HeadError {
  status: 400 | 408 | 413 | 431 | 501 | 505;
  why: string;
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Finds the end of a request head in the bytes as they arrive, without copying or rescanning them. Only CRLF ends a
 * line: a bare LF or a bare CR is an error at once (node:http accepts a bare LF; nginx, Prometheus and HTTP
 * client libraries never send one, and refusing it leaves one reading of where a line ends).
 */
export class HeadScanner {
  /** How many bytes of the head have been seen. */
  length = 0;
  // 0: inside a line, 1: after CR, 2: after CRLF, 3: after CRLF CR. The head ends at CRLF CRLF.
  private state = 0;

  /**
   * Scans `chunk` from `start`. Returns the index in `chunk` just past the head's last byte once the head is
   * complete, -1 if more bytes are needed, or an error.
   */
  scan(chunk: Buffer, start = 0): number | HeadError {
    for (let i = start; i < chunk.length; i++) {
      if (++this.length > MAX_HEAD_BYTES) return { status: 431, why: "request head too large" };
      const b = chunk[i];
      if (b === CR) {
        if (this.state === 1 || this.state === 3) return { status: 400, why: "bare CR" };
        this.state = this.state === 2 ? 3 : 1;
      } else if (b === LF) {
        if (this.state === 3) return i + 1;
        if (this.state !== 1) return { status: 400, why: "bare LF" };
        this.state = 2;
      } else {
        if (this.state === 1 || this.state === 3) return { status: 400, why: "bare CR" };
        this.state = 0;
      }
    }
    return -1;
  }
}

// RFC 9110 5.6.2: token = 1*tchar.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Origin-form only (RFC 9112 3.2.1): absolute-form, authority-form and `*` are for proxies and CONNECT/OPTIONS. */
const ORIGIN_FORM = /^\/[\x21\x22\x24-\x7e]*$/; // visible ASCII; no `#`, a fragment is never sent
const VERSION = /^HTTP\/(\d)\.(\d)$/;
// field-value = *( field-vchar / SP / HTAB ), obs-text included (read as latin1, as node:http does).
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parses a complete head (from HeadScanner: CRLF line ends only, the final empty line included) into a request,
 * or the error to answer. The body's length is checked here too, so a request passes only with a body the server
 * can read and discard.
 */
export function parseHead(
  head: Buffer,
  remoteAddress: string | undefined,
  maxBodyBytes: number,
): { request: HttpRequest; bodyLength: number } | HeadError {
  const lines = head.toString("latin1", 0, head.length - 4).split("\r\n");
  const parts = lines[0].split(" ");
  if (parts.length !== 3) return { status: 400, why: "malformed request line" };
  const [method, target, versionText] = parts;
  if (!TOKEN.test(method)) return { status: 400, why: "malformed method" };
  const version = VERSION.exec(versionText);
  if (!version) return { status: 400, why: "malformed HTTP version" };
  if (version[1] !== "1" || (version[2] !== "0" && version[2] !== "1"))
    return { status: 505, why: `HTTP/${version[1]}.${version[2]}` };
  if (!ORIGIN_FORM.test(target)) return { status: 400, why: "request target not in origin form" };
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let hosts = 0;
  let contentLengths = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(":");
    // A line starting with whitespace is obs-fold; whitespace before the colon must be refused (RFC 9112 5.1).
    const name = colon === -1 ? "" : line.slice(0, colon);
    if (!TOKEN.test(name)) return { status: 400, why: "malformed header line" };
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) return { status: 400, why: "control character in a header value" };
    const key = name.toLowerCase();
    if (key === "host") hosts++;
    if (key === "content-length") contentLengths++;
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  // RFC 9112 3.2: an HTTP/1.1 request without Host, or with more than one, gets 400 (node:http accepts both).
  if (hosts > 1 || (hosts === 0 && version[2] === "1"))
    return { status: 400, why: "missing or repeated Host" };
  // Request bodies in chunks are not implemented; nothing we serve takes a body (RFC 9112 6.1: 501).
  if ("transfer-encoding" in headers) return { status: 501, why: "Transfer-Encoding" };
  let bodyLength = 0;
  if (contentLengths > 0) {
    const text = headers["content-length"];
    // One decimal number; a list, even of equal values, or a repeated field is refused as node:http does.
    if (contentLengths > 1 || !/^\d+$/.test(text)) return { status: 400, why: "malformed Content-Length" };
    bodyLength = Number(text);
    if (bodyLength > maxBodyBytes) return { status: 413, why: `body of ${text} bytes` };
  }
  const q = target.indexOf("?");
  const request: HttpRequest = {
    method,
    target,
    path: q === -1 ? target : target.slice(0, q),
    query: q === -1 ? "" : target.slice(q + 1),
    version: version[2] === "0" ? "1.0" : "1.1",
    headers,
    remoteAddress,
  };
  return { request, bodyLength };
}
