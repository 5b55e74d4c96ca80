// Splits a byte stream from an SMTP server into replies (RFC 5321 4.2.1: "250-..." continues, "250 ..." or a
// bare "250" ends a reply). Pure and incremental, so the client and the tests' sinks share it.
// Hand-written with the rest of daemons/smtp/, because the filter must be an exact, bounded proxy
// (docs/decisions.md, 'Hand-written protocol code').

import type { Reply } from "./reply";

// A server that never ends a line, or never ends a multi-line reply, must not make us buffer without bound.
const MAX_REPLY_LINE_BYTES = 4096;
const MAX_REPLY_LINES = 100;

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const DASH = 0x2d;
const EMPTY = Buffer.alloc(0);

export class ReplyReader {
  private buffered: Buffer = EMPTY;
  private lines: string[] = [];
  private code = 0;

  /** Feeds bytes; returns the replies they complete. Throws on a line that is not an SMTP reply. */
  push(chunk: Buffer): Reply[] {
    // Lines are read in place from the bytes (no intermediate strings); only a line cut by a chunk boundary is
    // carried over.
    const buf = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const done: Reply[] = [];
    let start = 0;
    for (;;) {
      const lf = buf.indexOf(LF, start);
      if (lf < 0) break;
      const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
      const code = replyCode(buf, start, end);
      if (code < 0) {
        const shown = buf.toString("latin1", start, Math.min(end, start + 80));
        throw new Error(`not an SMTP reply line: ${JSON.stringify(shown)}`);
      }
      if (this.lines.length > 0 && code !== this.code)
        throw new Error(`reply code changed inside a reply: ${buf.toString("latin1", start, end)}`);
      this.code = code;
      this.lines.push(end - start > 4 ? buf.toString("utf8", start + 4, end) : "");
      if (this.lines.length > MAX_REPLY_LINES) throw new Error("reply has too many lines");
      if (end - start <= 3 || buf[start + 3] !== DASH) {
        done.push({ code, lines: this.lines });
        this.lines = [];
      }
      start = lf + 1;
    }
    this.buffered = start === buf.length ? EMPTY : buf.subarray(start);
    if (this.buffered.length > MAX_REPLY_LINE_BYTES) throw new Error("reply line too long");
    return done;
  }
}

/** The code of a reply line (2xx to 5xx, then " ", "-" or nothing), or -1 if the line is not one. */
function replyCode(buf: Buffer, start: number, end: number): number {
  if (end - start < 3) return -1;
  const a = buf[start] - 0x30;
  const b = buf[start + 1] - 0x30;
  const c = buf[start + 2] - 0x30;
  if (a < 2 || a > 5 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  if (end - start > 3 && buf[start + 3] !== SPACE && buf[start + 3] !== DASH) return -1;
  return a * 100 + b * 10 + c;
}
