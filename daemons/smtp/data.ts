// The SMTP DATA section on the wire (RFC 5321 4.5.2): reading it (end marker CRLF "." CRLF, dot-unstuffing,
// size limit) and writing it (dot-stuffing). Only CRLF counts as a line end, on both sides, so that unstuffing
// and stuffing are exact inverses and no "bare LF" trick can end the message early (SMTP smuggling,
// CVE-2023-51764 and friends).
// Hand-written, like the rest of daemons/smtp/: the filter re-injects exactly the bytes it received, so DKIM
// signatures still verify behind it, and the reader keeps the socket's own chunks instead of copying them while
// the message arrives; the verdict then joins them once, so for a moment a message exists twice (a 28.9 MB
// message raises the filter's resident memory by 42-54 MB). See
// docs/decisions.md, 'Hand-written protocol code'; figures from `npm run bench -- filtermail` in docs/daemons.md.

import { MessageParts } from "./parts";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF_DOT = Buffer.from("\r\n.");
/**
 * How many dots inside lines a CrlfDotSearch may meet in a buffer, up to `at`, before it stops looking for dots
 * and looks for CRLF "." instead: the few of a header (addresses, host names), then one per 512 bytes. So a
 * 64 KiB chunk costs at most 160 extra searches, and text with a dot every few bytes switches early.
 */
function dotMissBudget(at: number): number {
  return 32 + (at >> 9);
}

/**
 * Finds each CR LF "." of one buffer, in order (a stuffed dot or the end marker when reading, a dot to stuff when
 * writing). The dot is looked for first: a search for one byte is several times faster than one for three, and
 * the body of an encrypted message (base64) has no dots at all, its header a few. Where dots inside lines are
 * common, it goes over to the three-byte search for the rest of the buffer, so a buffer costs a bounded number of
 * extra searches (dotMissBudget).
 */
class CrlfDotSearch {
  /** Dots met so far that did not start a line. */
  private misses = 0;
  private dotsOff = false;

  /** Where the first CR LF "." at or after `from` starts, or -1. */
  next(buf: Buffer, from: number): number {
    if (this.dotsOff) return buf.indexOf(CRLF_DOT, from);
    for (let dot = buf.indexOf(DOT, from + 2); dot >= 0; dot = buf.indexOf(DOT, dot + 1)) {
      if (buf[dot - 1] === LF && buf[dot - 2] === CR) return dot - 2;
      if (++this.misses > dotMissBudget(dot)) {
        this.dotsOff = true;
        // No CR LF "." starts before this dot: the dots before it did not start lines.
        return buf.indexOf(CRLF_DOT, dot - 1);
      }
    }
    return -1;
  }
}

// Where the reader is relative to the line structure of the bytes seen so far.
const enum At {
  /** Start of a line: after CRLF, or the very beginning of the data. */
  LineStart,
  /** Inside a line, last byte was not CR. */
  Mid,
  /** Inside a line, last byte was CR. */
  Cr,
  /** A "." at the start of a line was read and not emitted yet. */
  Dot,
  /** "." then CR at the start of a line; LF next ends the data. */
  DotCr,
}

/** The state after the bytes `from`..end of `chunk`, read inside a line and holding no CRLF ".". */
function tailState(chunk: Buffer, from: number): At {
  const n = chunk.length;
  if (n > from && chunk[n - 1] === CR) return At.Cr;
  if (n - from >= 2 && chunk[n - 2] === CR && chunk[n - 1] === LF) return At.LineStart;
  return At.Mid;
}

export interface DataFeedResult {
  /** True once the end marker was read. */
  done: boolean;
  /** Bytes of the chunk consumed by the DATA section (the rest belongs to the next command). */
  consumed: number;
}

/**
 * Collects one DATA section from successive socket chunks, as unstuffed slices of those chunks (parts.ts). Past
 * `maxBytes` the reader keeps consuming until the end marker but stores nothing more.
 */
export class DataReader {
  private at: At = At.LineStart;
  private readonly body: MessageParts;

  constructor(maxBytes: number) {
    this.body = new MessageParts(maxBytes);
  }

  /** Number of message bytes read so far (unstuffed), also counted past the limit. */
  get bytes(): number {
    return this.body.bytes;
  }

  get tooBig(): boolean {
    return this.body.tooBig;
  }

  feed(chunk: Buffer): DataFeedResult {
    let emitFrom = 0; // start of the pending slice of `chunk` still to be stored
    let i = 0;
    const search = new CrlfDotSearch();
    const n = chunk.length;
    while (i < n) {
      if (this.at === At.Mid) {
        // Fast path: inside a line only a CRLF followed by "." matters (a stuffed dot or the end marker), so
        // jump to the next one natively instead of stepping through every line (CrlfDotSearch).
        const hit = search.next(chunk, i);
        if (hit >= 0) {
          i = hit + 2;
          this.at = At.LineStart;
          continue;
        }
        this.at = tailState(chunk, i);
        i = n;
        break;
      }
      const b = chunk[i];
      switch (this.at) {
        case At.Cr:
          this.at = b === LF ? At.LineStart : b === CR ? At.Cr : At.Mid;
          i++;
          break;
        case At.LineStart:
          if (b === DOT) {
            // Drop the stuffed dot: store what came before it, continue after it.
            this.store(chunk, emitFrom, i);
            emitFrom = i + 1;
            this.at = At.Dot;
          } else {
            this.at = b === CR ? At.Cr : At.Mid;
          }
          i++;
          break;
        case At.Dot:
          if (b === CR) {
            this.at = At.DotCr;
            // The CR is held back: if LF follows, this was the end marker and the CR is not message data.
            this.store(chunk, emitFrom, i);
            emitFrom = i + 1;
          } else {
            this.at = At.Mid;
          }
          i++;
          break;
        case At.DotCr:
          if (b === LF) {
            this.at = At.LineStart;
            return { done: true, consumed: i + 1 };
          }
          // "." CR <other>: the dot was a stuffed dot of a line starting with CR; restore the held-back CR,
          // and this byte is ordinary data following a CR.
          this.body.add(Buffer.from([CR]));
          this.at = b === CR ? At.Cr : At.Mid;
          emitFrom = i;
          i++;
          break;
      }
    }
    // Bytes up to `n` belong to the message, except a held-back dot or dot-CR (already excluded by emitFrom).
    this.store(chunk, emitFrom, n);
    return { done: false, consumed: n };
  }

  /** The whole message as one Buffer; the reader is empty afterwards. */
  take(): Buffer {
    return this.body.take();
  }

  private store(chunk: Buffer, from: number, to: number): void {
    if (to > from) this.body.add(chunk.subarray(from, to));
  }
}

const DOT_BYTE = Buffer.from(".");
const END_MARKER = Buffer.from(".\r\n");
const CRLF_END_MARKER = Buffer.from("\r\n.\r\n");

/**
 * The slices to write for `message` as a DATA section including the end marker: every line starting with "."
 * gets another "." (RFC 5321 4.5.2). Returns slices of `message` itself, so nothing is copied.
 */
export function stuffedSlices(message: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  if (message.length > 0 && message[0] === DOT) out.push(DOT_BYTE);
  const search = new CrlfDotSearch();
  for (;;) {
    const hit = search.next(message, from);
    if (hit < 0) break;
    out.push(message.subarray(from, hit + 3), DOT_BYTE);
    from = hit + 3;
  }
  out.push(message.subarray(from));
  const endsWithCrlf =
    message.length >= 2 && message[message.length - 2] === CR && message[message.length - 1] === LF;
  out.push(message.length === 0 || endsWithCrlf ? END_MARKER : CRLF_END_MARKER);
  return out;
}
