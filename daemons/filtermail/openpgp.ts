// Is an ASCII-armored payload really an OpenPGP encrypted message? (relay-daemons.md 8.5: the armor frame,
// then the packet sequence (PKESK | SKESK)* SEIPD ending exactly at the end.) The base64 is decoded in
// windows and the packets are walked as a stream, so a 30 MB payload needs no second 30 MB buffer.

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

// Base64 characters decoded per step: a multiple of 4, small enough to stay out of the large-object heap.
const WINDOW_CHARS = 64 * 1024;

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

/** Strict base64 (line breaks ignored, nothing else) whose decoded bytes pass `PacketWalker`. */
export function checkBase64Packets(text: Buffer): boolean {
  const walker = new PacketWalker();
  const window = Buffer.allocUnsafe(WINDOW_CHARS + 4);
  let filled = 0;
  let sawPadding = false;
  let pos = 0;
  while (pos < text.length) {
    // Copy the next line (or what fits) into the window, skipping CR and LF.
    const c = text[pos];
    if (c === CR || c === LF) {
      pos++;
      continue;
    }
    if (sawPadding) return false; // "=" padding may only end the data
    let lineEnd = text.indexOf(LF, pos);
    if (lineEnd < 0) lineEnd = text.length;
    if (lineEnd > pos && text[lineEnd - 1] === CR) lineEnd--;
    const take = Math.min(lineEnd - pos, WINDOW_CHARS + 4 - filled);
    if (text.subarray(pos, pos + take).indexOf(EQ) >= 0) sawPadding = true;
    text.copy(window, filled, pos, pos + take);
    filled += take;
    pos += take;
    if (filled >= WINDOW_CHARS) {
      const whole = filled - (filled % 4);
      if (!decodeInto(window.subarray(0, whole), walker)) return false;
      window.copy(window, 0, whole, filled);
      filled -= whole;
    }
  }
  if (filled % 4 !== 0) return false;
  if (filled > 0 && !decodeInto(window.subarray(0, filled), walker)) return false;
  return walker.end();
}

/** Decodes canonical base64 (validated by re-encoding) and feeds it to the walker. */
function decodeInto(chars: Buffer, walker: PacketWalker): boolean {
  const text = chars.toString("latin1");
  const bytes = Buffer.from(text, "base64");
  // Node's decoder skips invalid characters silently; strict decoding means the round trip is exact.
  if (bytes.toString("base64") !== text) return false;
  return walker.push(bytes);
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
      switch (this.state) {
        case State.Failed:
          return false;
        case State.Body: {
          const skip = Math.min(this.remaining, bytes.length - i);
          this.remaining -= skip;
          i += skip;
          if (this.remaining === 0) this.bodyDone();
          break;
        }
        case State.Tag: {
          const b = bytes[i++];
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
          break;
        }
        case State.Length: {
          this.lengthBytes.push(bytes[i++]);
          if (!this.oldFormat && this.lengthBytes.length === 1) {
            const o = this.lengthBytes[0];
            if (o >= 192 && o < 224) this.lengthNeeded = 2;
            else if (o === 255) this.lengthNeeded = 5;
          }
          if (this.lengthBytes.length === this.lengthNeeded) this.lengthDone();
          break;
        }
      }
    }
    return this.state !== State.Failed;
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
