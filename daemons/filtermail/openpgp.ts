// Is an ASCII-armored payload really an OpenPGP encrypted message? (docs/daemons.md, 'Encryption filter':
// the armor frame, then the packet sequence (PKESK | SKESK)* SEIPD ending exactly at the end.) Armor as clients
// write it is not decoded at all: its lines are checked to be base64 (base64wasm.ts) and only the packet headers
// are decoded, where the layout puts them (checkLaidOutBase64Packets). Anything else, or a runtime without
// WebAssembly SIMD, is decoded in windows and the packets are walked as a stream, so a 30 MB payload needs no
// second 30 MB buffer either way. Hand-written rather than an OpenPGP library: the filter never decrypts or
// touches keys, it only checks the armor and the packet headers, and must do that without copying the message.
// Figures from `npm run bench -- filtermail` in docs/daemons.md, 'Speed'. See docs/decisions.md, 'Hand-written
// protocol code'.

import { LINES_WINDOW, MIN_LINE_WIDTH, validBase64Lines } from "./base64wasm";

const BEGIN = Buffer.from("-----BEGIN PGP MESSAGE-----\r\n");
const END = Buffer.from("-----END PGP MESSAGE-----");
const VERSION = Buffer.from("Version: ");
const CR = 0x0d;
const LF = 0x0a;
const EQ = 0x3d;

// Packet tags (RFC 9580 5): public-key and symmetric-key encrypted session keys, and the encrypted data.
const TAG_PKESK = 1;
const TAG_SKESK = 3;
const TAG_SEIPD = 18;

/**
 * `check_armored_payload` of the later Python and the Rust filter. A "Version: " armor header is refused
 * outgoing (our own clients never send one) and skipped incoming (ProtonMail sends one, upstream PR #655).
 */
export function checkArmoredPayload(payload: Buffer, direction: "outgoing" | "incoming"): boolean {
  if (!startsWith(payload, BEGIN, 0)) return false;
  let start = BEGIN.length;
  if (startsWith(payload, VERSION, start)) {
    if (direction === "outgoing") return false;
    const lf = payload.indexOf("\r\n", start);
    if (lf < 0) return false;
    start = lf + 2;
  }
  let end = payload.length;
  while (end > start && (payload[end - 1] === CR || payload[end - 1] === LF)) end--;
  if (end - start < END.length || !startsWith(payload, END, end - END.length)) return false;
  end -= END.length;
  while (start < end && (payload[start] === CR || payload[start] === LF)) start++;
  // Everything from the last "=" on is the CRC line (or, without one, the padding: then decoding fails).
  const lastEq = payload.lastIndexOf(EQ, end - 1);
  if (lastEq < start) return false;
  return checkBase64Packets(payload.subarray(start, lastEq));
}

function startsWith(b: Buffer, prefix: Buffer, at: number): boolean {
  return b.length - at >= prefix.length && b.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0;
}

// Base64 alphabet value of each byte; SKIP for the line breaks of the armor, PAD for "=", BAD for the rest.
const SKIP = -2;
const PAD = -3;
const BAD = -1;
const SEXTET = new Int8Array(256).fill(BAD);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => {
  SEXTET[c.charCodeAt(0)] = i;
});
SEXTET[CR] = SKIP;
SEXTET[LF] = SKIP;
SEXTET[EQ] = PAD;

// How a payload is decoded when checkLaidOutBase64Packets cannot decide it (another layout, or no WebAssembly
// SIMD), strictly in the same way each (the tests compare them): up to WINDOW_CHARS natively in one piece; longer
// ones laid out in lines as armor is, natively a window of lines at a time (decodeStrictBase64Lines), so that
// neither a 30 MB string nor a 22 MB copy is made; anything else natively in one piece up to NATIVE_MAX_CHARS,
// beyond that through a JS decoder with bounded memory (3-4 times slower).
const WINDOW_CHARS = 16 * 1024;
const NATIVE_MAX_CHARS = 1024 * 1024;
// Decoded bytes handed to the packet walker per step by the streaming decoder.
const OUT_CHUNK_BYTES = 48 * 1024;
const DASH = 0x2d;
const UNDERSCORE = 0x5f;

/** Strict base64 (see `decodeStrictBase64`) whose bytes form an encrypted OpenPGP message (`PacketWalker`). */
export function checkBase64Packets(text: Buffer): boolean {
  const checked = checkLaidOutBase64Packets(text);
  if (checked !== undefined) return checked;
  if (text.length > WINDOW_CHARS) {
    const lineWalker = new PacketWalker();
    const lines = decodeStrictBase64Lines(text, (bytes) => lineWalker.push(bytes));
    if (lines !== undefined) return lines && lineWalker.end();
  }
  const walker = new PacketWalker();
  if (text.length <= NATIVE_MAX_CHARS) {
    const bytes = decodeStrictBase64(text);
    return bytes !== undefined && walker.push(bytes) && walker.end();
  }
  return decodeStrictBase64Streaming(text, (chunk) => walker.push(chunk)) && walker.end();
}

/** The layout the first line sets: its width and line break (CR LF or LF); undefined when there is no LF. */
function firstLineLayout(text: Buffer): { width: number; crlf: boolean; stride: number } | undefined {
  const first = text.indexOf(LF);
  if (first < 0) return undefined;
  const crlf = first > 0 && text[first - 1] === CR;
  const width = crlf ? first - 1 : first;
  return { width, crlf, stride: width + (crlf ? 2 : 1) };
}

/**
 * The same check for text laid out as armor is (see `decodeStrictBase64Lines`) without decoding it: the full
 * lines are checked to hold only alphabet characters (base64wasm.ts), the short rest is decoded, and the packet
 * walker reads only the bytes of the packet headers, each decoded from its four characters where the layout puts
 * them; it skips the packet bodies. Undefined when the text is not laid out like that, or without WebAssembly
 * SIMD: the caller then decodes it.
 */
export function checkLaidOutBase64Packets(text: Buffer): boolean | undefined {
  const layout = firstLineLayout(text);
  if (layout === undefined) return undefined;
  const { width, crlf, stride } = layout;
  if (width < MIN_LINE_WIDTH || width % 4 !== 0 || stride > LINES_WINDOW) return undefined;
  const lines = validBase64Lines(text, width, crlf);
  if (lines === undefined) return undefined;
  // After the full lines, only the last line and line breaks: anything longer is not this layout.
  const restText = text.subarray(lines * stride);
  if (restText.length > 2 * stride) return undefined;
  const fullBytes = (lines * width * 3) / 4;
  const byteAt = (at: number): number => {
    const group = Math.floor(at / 3);
    const char = group * 4;
    const line = Math.floor(char / width);
    const p = line * stride + (char - line * width);
    const bits =
      (SEXTET[text[p]] << 18) |
      (SEXTET[text[p + 1]] << 12) |
      (SEXTET[text[p + 2]] << 6) |
      SEXTET[text[p + 3]];
    return (bits >> (16 - 8 * (at - group * 3))) & 0xff;
  };
  const walker = new PacketWalker();
  let at = 0;
  while (at < fullBytes) {
    const body = walker.bodyLeft();
    if (body > 0) {
      const skip = Math.min(body, fullBytes - at);
      walker.skip(skip);
      at += skip;
    } else if (!walker.step(byteAt(at++))) return false;
  }
  // The full lines hold only alphabet characters, a multiple of 4, so the text is strict exactly when the rest is.
  // The rest is short: decoded in JavaScript straight into the walker, with no string or buffer made for it.
  return decodeStrictBase64Streaming(restText, (bytes) => walker.push(bytes)) && walker.end();
}

/**
 * Strict, canonical base64 as Rust's standard engine takes it after the armor's line breaks are removed:
 * only the 64 alphabet characters, CR and LF; "=" padding only at the end; no stray bits. Undefined if not.
 * Node's decoder is lenient (it skips unknown characters, stops at "=", and takes "-" and "_"), so strictness
 * is checked around it: any skipped or misplaced character makes the decoded length come out short.
 */
export function decodeStrictBase64(text: Buffer): Buffer | undefined {
  if (text.indexOf(DASH) >= 0 || text.indexOf(UNDERSCORE) >= 0) return undefined;
  let end = text.length;
  let pads = 0;
  while (end > 0) {
    const c = text[end - 1];
    if (c === CR || c === LF) end--;
    else if (c === EQ && pads < 2) {
      pads++;
      end--;
    } else break;
  }
  if (pads > 0) {
    const last = SEXTET[text[end - 1]];
    if (last < 0 || (last & (pads === 2 ? 0x0f : 0x03)) !== 0) return undefined;
  }
  const bytes = Buffer.from(text.toString("latin1"), "base64");
  // Every character but the line breaks must have been decoded. Counting the breaks exactly takes a native search
  // per line (about as long as decoding), so the regular layout OpenPGP writes is tried first: a count of line
  // breaks that is too low can only make the expected length too high (each character the decoder skipped
  // shortens its output, see above), so a match with it is a match with the exact count.
  const fits = (breaks: number) => {
    const chars = text.length - breaks;
    return chars % 4 === 0 && bytes.length === (chars / 4) * 3 - pads;
  };
  if (fits(regularLineBreaks(text)) || fits(count(text, CR) + count(text, LF))) return bytes;
  return undefined;
}

/**
 * The CR and LF bytes of `text` where a regular layout puts them: lines of the first line's length, each ended like
 * the first, then a shorter last line and line breaks at the very end. Only bytes seen to be CR or LF are counted,
 * each once, so this is at most the true count, and equal to it for armor as OpenPGP implementations write it.
 */
export function regularLineBreaks(text: Buffer): number {
  const n = text.length;
  const layout = firstLineLayout(text);
  if (layout === undefined) return 0;
  const { width, crlf, stride } = layout;
  const breakLength = stride - width;
  let counted = 0;
  let at = width; // where the next line break is expected
  while (at + breakLength <= n && (crlf ? text[at] === CR && text[at + 1] === LF : text[at] === LF)) {
    counted += breakLength;
    at += stride;
  }
  const covered = at - width; // the bytes before this are all counted or inside lines
  for (let end = n; end > covered && (text[end - 1] === CR || text[end - 1] === LF); end--) counted++;
  return counted;
}

/**
 * The same strict decoding for text laid out as armor is (RFC 9580 6.2): lines of one width, a multiple of 4, each
 * ended the same way, then a shorter last line with the padding and line breaks at the end. The full lines are
 * decoded natively a window of lines at a time into one buffer of the window's size, and each window must decode
 * to exactly 3 bytes per 4 characters: a skipped or misplaced character (outside the alphabet, "=", a line break
 * inside a line) makes it come out short. The rest, short, goes through decodeStrictBase64. The decoded bytes go
 * to `sink` window by window (it must not keep them: the buffer is refilled for the next window). True or false
 * as decodeStrictBase64Streaming; undefined, before anything was given to `sink` or at a window that did not
 * decode exactly, when the text is not laid out like that: the caller then decodes it another way.
 */
export function decodeStrictBase64Lines(
  text: Buffer,
  sink: (bytes: Buffer) => boolean,
  windowChars = WINDOW_CHARS,
): boolean | undefined {
  if (text.indexOf(DASH) >= 0 || text.indexOf(UNDERSCORE) >= 0) return false;
  const layout = firstLineLayout(text);
  if (layout === undefined) return undefined;
  const { width, crlf, stride } = layout;
  if (width === 0 || width % 4 !== 0) return undefined;
  const breakLength = stride - width;
  // The full lines: those whose line break is where the first line's width puts it.
  let fullLines = 0;
  for (let at = width; at + breakLength <= text.length; at += stride) {
    if (crlf ? text[at] !== CR || text[at + 1] !== LF : text[at] !== LF) break;
    fullLines++;
  }
  const linesPerWindow = Math.max(1, Math.floor(windowChars / stride));
  const window = Buffer.allocUnsafe((Math.min(linesPerWindow, fullLines) * width * 3) / 4);
  for (let line = 0; line < fullLines;) {
    const lines = Math.min(linesPerWindow, fullLines - line);
    const expected = (lines * width * 3) / 4;
    const chars = text.toString("latin1", line * stride, (line + lines) * stride);
    if (window.write(chars, 0, expected, "base64") !== expected) return undefined;
    if (!sink(window.subarray(0, expected))) return false;
    line += lines;
  }
  // The full lines decoded exactly, so the rest starts at a group of 4 and decides alone (its end is the text's).
  const restText = text.subarray(fullLines * stride);
  if (restText.length > windowChars + stride) return undefined; // not a last line: no such layout
  const rest = decodeStrictBase64(restText);
  return rest !== undefined && (rest.length === 0 || sink(rest));
}

function count(b: Buffer, byte: number): number {
  let n = 0;
  for (let p = b.indexOf(byte); p >= 0; p = b.indexOf(byte, p + 1)) n++;
  return n;
}

/**
 * The same strict decoding in one JS pass with bounded memory: decoded bytes go to `sink` in chunks of at
 * most OUT_CHUNK_BYTES; false as soon as the text is not strict base64 or the sink says stop.
 */
export function decodeStrictBase64Streaming(text: Buffer, sink: (chunk: Buffer) => boolean): boolean {
  const len = text.length;
  // No bigger than the text needs: the last line of an armor decodes to a few dozen bytes.
  const size = Math.min(OUT_CHUNK_BYTES, Math.floor(len / 4) * 3 + 3);
  const out = Buffer.allocUnsafe(size);
  let k = 0;
  let quad = 0; // sextets collected so far, most significant first
  let n = 0; // how many sextets are in `quad`
  let i = 0;
  for (; i < len; i++) {
    const v = SEXTET[text[i]];
    if (v >= 0) {
      quad = (quad << 6) | v;
      if (++n === 4) {
        out[k] = quad >> 16;
        out[k + 1] = (quad >> 8) & 0xff;
        out[k + 2] = quad & 0xff;
        k += 3;
        n = 0;
        quad = 0;
        if (k + 3 > size) {
          if (!sink(out.subarray(0, k))) return false;
          k = 0;
        }
      }
    } else if (v === PAD) {
      break;
    } else if (v !== SKIP) {
      return false;
    }
  }
  if (i < len) {
    // Padding: "xx==" or "xxx=", with the unused low bits zero, and only line breaks after it.
    let pads = 0;
    for (; i < len; i++) {
      const v = SEXTET[text[i]];
      if (v === PAD) pads++;
      else if (v !== SKIP) return false;
    }
    if (n === 2 && pads === 2 && (quad & 0x0f) === 0) out[k++] = quad >> 4;
    else if (n === 3 && pads === 1 && (quad & 0x03) === 0) {
      out[k++] = quad >> 10;
      out[k++] = (quad >> 2) & 0xff;
    } else return false;
  } else if (n !== 0) {
    return false; // the length is not a multiple of 4
  }
  return k === 0 || sink(out.subarray(0, k));
}

const enum State {
  /** Expecting a packet's first (tag) octet. */
  Tag,
  /** Reading length octets (new format: first octet in `lenFirst`). */
  Length,
  /** Skipping `remaining` body octets; then `partial` says whether another length follows. */
  Body,
  Failed,
}

/**
 * Streaming form of upstream's `check_openpgp_payload`: accepts `(PKESK | SKESK)* SEIPD` where the SEIPD
 * ends exactly at the end. Understands new-format lengths including partial body lengths (GopenPGP writes
 * them) and, like Rust filtermail >= 0.3, old-format headers.
 */
export class PacketWalker {
  private state = State.Tag;
  private tag = -1;
  private lastTag = -1;
  private oldFormat = false;
  private lengthBytes: number[] = [];
  private lengthNeeded = 0;
  private remaining = 0;
  private partial = false;
  private packets = 0;

  push(bytes: Buffer): boolean {
    let i = 0;
    while (i < bytes.length) {
      if (this.state === State.Failed) return false;
      if (this.state === State.Body) {
        const skip = Math.min(this.remaining, bytes.length - i);
        this.skip(skip);
        i += skip;
      } else if (!this.step(bytes[i++])) return false;
    }
    return this.state !== State.Failed;
  }

  /** Octets of the current packet body still to skip (0 outside a body). */
  bodyLeft(): number {
    return this.state === State.Body ? this.remaining : 0;
  }

  /** Skips `n` <= bodyLeft() octets of the body. */
  skip(n: number): void {
    this.remaining -= n;
    if (this.remaining === 0) this.bodyDone();
  }

  /** Reads one octet of a packet header (outside a body); false once the sequence cannot be an encrypted message. */
  step(b: number): boolean {
    switch (this.state) {
      case State.Tag: {
        // Another packet follows the previous one, which therefore must have been a session key packet.
        if (this.packets > 0 && this.lastTag !== TAG_PKESK && this.lastTag !== TAG_SKESK) return this.fail();
        if ((b & 0x80) === 0) return this.fail();
        this.packets++;
        this.oldFormat = (b & 0x40) === 0;
        this.lengthBytes = [];
        if (this.oldFormat) {
          this.tag = (b >> 2) & 0x0f;
          const lengthType = b & 0x03;
          if (lengthType === 3) return this.fail(); // indeterminate length: cannot end exactly
          this.lengthNeeded = [1, 2, 4][lengthType];
        } else {
          this.tag = b & 0x3f;
          this.lengthNeeded = 1;
        }
        this.state = State.Length;
        return true;
      }
      case State.Length: {
        this.lengthBytes.push(b);
        if (!this.oldFormat && this.lengthBytes.length === 1) {
          const o = this.lengthBytes[0];
          if (o >= 192 && o < 224) this.lengthNeeded = 2;
          else if (o === 255) this.lengthNeeded = 5;
        }
        if (this.lengthBytes.length === this.lengthNeeded) this.lengthDone();
        return true;
      }
      default:
        return this.fail();
    }
  }

  /** True when the data ended exactly after a final SEIPD packet. */
  end(): boolean {
    return this.state === State.Tag && this.packets > 0 && this.lastTag === TAG_SEIPD;
  }

  private lengthDone(): void {
    const l = this.lengthBytes;
    this.partial = false;
    if (this.oldFormat) {
      this.remaining = l.reduce((acc, b) => acc * 256 + b, 0);
    } else if (l[0] < 192) {
      this.remaining = l[0];
    } else if (l[0] < 224) {
      this.remaining = ((l[0] - 192) << 8) + l[1] + 192;
    } else if (l[0] === 255) {
      this.remaining = l[1] * 2 ** 24 + ((l[2] << 16) | (l[3] << 8) | l[4]);
    } else {
      this.remaining = 2 ** (l[0] & 0x1f); // partial body length: another length follows this chunk
      this.partial = true;
    }
    this.state = State.Body;
    if (this.remaining === 0) this.bodyDone();
  }

  private bodyDone(): void {
    if (this.partial) {
      this.lengthBytes = [];
      this.lengthNeeded = 1;
      this.state = State.Length;
      return;
    }
    this.lastTag = this.tag;
    this.state = State.Tag;
  }

  private fail(): false {
    this.state = State.Failed;
    return false;
  }
}
