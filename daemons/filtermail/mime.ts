// Just enough RFC 5322 / RFC 2045-2046 parsing for the filter's checks, on the message Buffer itself:
// header fields are kept as byte offsets and decoded only when asked for, bodies and parts are subarrays,
// so even a 30 MB message is never copied. Behaviour follows Python's email package where the upstream
// checks depended on it (first header wins, default type text/plain, CRLF before a boundary belongs to it).
// Hand-written rather than a MIME library: the checks need a few headers and the shape of at most two levels of
// parts, never the decoded bodies and tree of strings that general MIME parsers build by copying the content.
// The checks ask for a few headers several times, so each entity compares field names in place and parses its
// Content-Type once (the verdict was half of the filter's JavaScript time before). Figures from
// `npm run bench -- filtermail` in docs/daemons.md, 'Speed'; see docs/decisions.md, 'Hand-written protocol code'.

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

// A header field name longer than this is not one (Postfix's header_size_limit is far above any real name).
const MAX_HEADER_NAME_BYTES = 256;
// A header value longer than this is treated as malformed rather than decoded into a string: no check needs
// more, and a huge header must not cost a second copy of the message.
const MAX_HEADER_VALUE_BYTES = 256 * 1024;

interface Field {
  /** The name's bytes: bytes[nameStart, valueStart - 1) (the colon ends it). */
  nameStart: number;
  valueStart: number;
  end: number;
  /** Continuation lines follow the first: the value holds line breaks to unfold. */
  folded: boolean;
}

export class MimeEntity {
  /** The parsed Content-Type, once asked for (every check asks, several times). */
  private parsedContentType: ContentType | undefined;

  private constructor(
    private readonly bytes: Buffer,
    private readonly fields: Field[],
    /** The raw body, after the blank line that ends the header section. */
    readonly body: Buffer,
  ) {}

  static parse(bytes: Buffer): MimeEntity {
    const fields: Field[] = [];
    let pos = 0;
    let bodyStart = bytes.length;
    while (pos < bytes.length) {
      const lf = bytes.indexOf(LF, pos);
      const lineEnd = lf < 0 ? bytes.length : lf + 1;
      const contentEnd = lf < 0 ? bytes.length : lf > pos && bytes[lf - 1] === CR ? lf - 1 : lf;
      if (contentEnd === pos) {
        // Empty line: end of the header section.
        bodyStart = lineEnd;
        break;
      }
      const first = bytes[pos];
      if ((first === SP || first === TAB) && fields.length > 0) {
        const last = fields[fields.length - 1];
        last.end = contentEnd; // folded continuation line
        last.folded = true;
        pos = lineEnd;
        continue;
      }
      const colon = headerNameEnd(bytes, pos, contentEnd);
      if (colon < 0) {
        // Not a header line: the body starts here (Python records a missing-separator defect and does the same).
        bodyStart = pos;
        break;
      }
      fields.push({
        nameStart: pos,
        valueStart: colon + 1,
        end: contentEnd,
        folded: false,
      });
      pos = lineEnd;
    }
    return new MimeEntity(bytes, fields, bytes.subarray(Math.min(bodyStart, bytes.length)));
  }

  /**
   * The first field of that name, unfolded and trimmed, like Python's `message.get(name)`. Undefined when the
   * field is absent or longer than MAX_HEADER_VALUE_BYTES.
   */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    let f: Field | undefined;
    for (const x of this.fields) {
      if (this.named(x, lower)) {
        f = x;
        break;
      }
    }
    if (!f || f.end - f.valueStart > MAX_HEADER_VALUE_BYTES) return undefined;
    const value = this.bytes.toString("utf8", f.valueStart, f.end);
    // Only a folded field has line breaks to take out (each one is followed by a blank: see parse).
    return (f.folded ? value.replace(/\r?\n(?=[ \t])/g, "") : value).trim();
  }

  hasHeader(name: string): boolean {
    return this.headerCount(name) > 0;
  }

  /** How many fields of that name there are. */
  headerCount(name: string): number {
    const lower = name.toLowerCase();
    let n = 0;
    for (const f of this.fields) if (this.named(f, lower)) n++;
    return n;
  }

  /**
   * The field's name is `lower` (lower-case), ignoring ASCII case. Names are compared in place: they are
   * printable ASCII (headerNameEnd), so no string is made for each field of every entity.
   */
  private named(f: Field, lower: string): boolean {
    const length = f.valueStart - 1 - f.nameStart;
    if (length !== lower.length) return false;
    for (let i = 0; i < length; i++) {
      const b = this.bytes[f.nameStart + i];
      if ((b >= 0x41 && b <= 0x5a ? b + 0x20 : b) !== lower.charCodeAt(i)) return false;
    }
    return true;
  }

  /** The Content-Type header parsed (see parseContentType); the same object on every call, not to be changed. */
  get contentTypeInfo(): ContentType {
    this.parsedContentType ??= parseContentType(this.header("content-type"));
    return this.parsedContentType;
  }

  /** Lower-cased "type/subtype"; "text/plain" when absent or invalid (RFC 2045 5.2). */
  get contentType(): string {
    return this.contentTypeInfo.type;
  }

  /**
   * The preamble, parts and epilogue of a multipart entity, each a subarray of the message; undefined when the
   * entity is not multipart or its boundary never occurs (Python then treats the body as plain text).
   */
  multipart(): Multipart | undefined {
    const ct = this.contentTypeInfo;
    if (!ct.type.startsWith("multipart/")) return undefined;
    const boundary = ct.params.get("boundary");
    if (!boundary) return undefined;
    return splitMultipart(this.body, boundary);
  }
}

/** End of a header name (index of the colon) for a line at `start`, or -1 if the line is no header field. */
function headerNameEnd(bytes: Buffer, start: number, end: number): number {
  const limit = Math.min(end, start + MAX_HEADER_NAME_BYTES);
  for (let i = start; i < limit; i++) {
    const b = bytes[i];
    if (b === COLON) return i > start ? i : -1;
    if (b < 0x21 || b > 0x7e) return -1; // RFC 5322 2.2: printable US-ASCII except ":"
  }
  return -1;
}

export interface ContentType {
  type: string;
  params: Map<string, string>;
  /**
   * A parameter occurs twice, counting RFC 2231 sections ("boundary*0", "boundary*") as their name: readers
   * differ in which one they take, so such a header can be read as another structure than the filter's.
   */
  repeatedParam: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;
const SLASH = 0x2f;
// Parameter base names parseContentType keeps in a list before it switches to a Set.
const MAX_LISTED_PARAMS = 8;

export function parseContentType(value: string | undefined): ContentType {
  const params = new Map<string, string>();
  if (value === undefined) return { type: "text/plain", params, repeatedParam: false };
  // One pass over the value, splitting at ";" outside quoted strings (a backslash inside quotes escapes the next
  // character): every Content-Type of every entity comes through here, so no array of pieces and no regular
  // expression for the common case.
  let type = "";
  let first = true;
  let repeatedParam = false;
  // Base names seen so far: an array while there are few (real values have a handful), a Set beyond that.
  let seen: string[] | Set<string> = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i <= value.length; i++) {
    if (i < value.length) {
      const c = value.charCodeAt(i);
      if (quoted && c === BACKSLASH && i + 1 < value.length) i++;
      else if (c === QUOTE) quoted = !quoted;
      if (c !== SEMICOLON || quoted) continue;
    }
    const piece = value.slice(start, i);
    start = i + 1;
    if (first) {
      first = false;
      type = piece.trim().toLowerCase();
      continue;
    }
    const eq = piece.indexOf("=");
    if (eq <= 0) continue;
    const name = piece.slice(0, eq).trim().toLowerCase();
    const star = name.indexOf("*");
    const baseName = star < 0 ? name : name.slice(0, star);
    if (!repeatedParam) {
      if (Array.isArray(seen)) {
        if (seen.includes(baseName)) repeatedParam = true;
        else if (seen.push(baseName) > MAX_LISTED_PARAMS) seen = new Set(seen);
      } else if (seen.has(baseName)) repeatedParam = true;
      else seen.add(baseName);
    }
    let v = piece.slice(eq + 1).trim();
    if (v.charCodeAt(0) === QUOTE) {
      v = v.slice(1, v.length > 1 && v.charCodeAt(v.length - 1) === QUOTE ? -1 : undefined);
      if (v.includes("\\")) v = v.replace(/\\(.)/g, "$1");
    }
    if (!params.has(name)) params.set(name, v);
  }
  return { type: isMediaType(type) ? type : "text/plain", params, repeatedParam };
}

/** "type/subtype": one "/" with no white space on either side, as the regular expression it replaces read it. */
function isMediaType(type: string): boolean {
  let slash = -1;
  for (let i = 0; i < type.length; i++) {
    const c = type.charCodeAt(i);
    // Outside ASCII, JavaScript's own idea of white space decides.
    if (c > 0x7e) return /^[^\s/]+\/[^\s/]+$/.test(type);
    if (c === SP || (c >= TAB && c <= CR)) return false;
    if (c === SLASH) {
      if (slash >= 0) return false;
      slash = i;
    }
  }
  return slash > 0 && slash < type.length - 1;
}

/** A multipart body: the text before the first delimiter, the parts, and the text after the closing one. */
export interface Multipart {
  preamble: Buffer;
  parts: Buffer[];
  epilogue: Buffer;
}

/**
 * RFC 2046 5.1.1: a delimiter line is "--" boundary, optionally "--" (the last one), optional blanks, then the
 * line end. The line break before a delimiter belongs to it. Without a closing delimiter the last part runs to
 * the end (as Python does, recording a defect) and the epilogue is empty.
 */
export function splitMultipart(body: Buffer, boundary: string): Multipart | undefined {
  const delimiter = Buffer.from(`--${boundary}`, "utf8");
  const parts: Buffer[] = [];
  let found = false;
  let preamble = body.subarray(0, 0);
  let partStart = -1;
  let pos = 0;
  for (;;) {
    const at = body.indexOf(delimiter, pos);
    if (at < 0) break;
    pos = at + 1;
    if (at > 0 && body[at - 1] !== LF) continue;
    let j = at + delimiter.length;
    let closing = false;
    if (body[j] === 0x2d && body[j + 1] === 0x2d) {
      closing = true;
      j += 2;
    }
    while (body[j] === SP || body[j] === TAB) j++;
    let next: number;
    if (j >= body.length) next = body.length;
    else if (body[j] === LF) next = j + 1;
    else if (body[j] === CR && body[j + 1] === LF) next = j + 2;
    else continue;
    found = true;
    const before = withoutLineBreak(body, Math.max(partStart, 0), at);
    if (partStart < 0) preamble = before;
    else parts.push(before);
    if (closing) return { preamble, parts, epilogue: body.subarray(next) };
    partStart = next;
    pos = next;
  }
  if (!found) return undefined;
  if (partStart >= 0) parts.push(body.subarray(partStart));
  return { preamble, parts, epilogue: body.subarray(body.length) };
}

/** body[start, end) without the line break at its end, which belongs to the delimiter that follows. */
function withoutLineBreak(body: Buffer, start: number, end: number): Buffer {
  if (end > start && body[end - 1] === LF) end--;
  if (end > start && body[end - 1] === CR) end--;
  return body.subarray(start, end);
}

/** Python's `str.strip()` for the ASCII whitespace the checks meet, on bytes. */
export function trimAscii(b: Buffer): Buffer {
  let s = 0;
  let e = b.length;
  while (s < e && isSpace(b[s])) s++;
  while (e > s && isSpace(b[e - 1])) e--;
  return b.subarray(s, e);
}

function isSpace(c: number): boolean {
  return c === SP || c === TAB || c === LF || c === CR || c === 0x0b || c === 0x0c;
}
