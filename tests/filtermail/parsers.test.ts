// The header parsers were rewritten to do less work per message (no string per header name, a parsed
// Content-Type kept per entity, character codes instead of a regular expression per character). The
// straightforward versions they replaced serve as oracles here: on any input both give the same answer.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseFromHeader } from "../../daemons/filtermail/address";
import { MimeEntity, parseContentType } from "../../daemons/filtermail/mime";

// ---- The replaced implementations, unchanged but for their names. ----

function oldParseFromHeader(value: string): string | undefined {
  const tokens = oldTokenize(value);
  if (!tokens) return undefined;
  if (tokens.some((t) => t.kind === "special" && (t.text === "," || t.text === ":" || t.text === ";"))) {
    return undefined;
  }
  const open = tokens.findIndex((t) => t.kind === "special" && t.text === "<");
  let addrTokens: Token[];
  if (open >= 0) {
    const close = tokens.findIndex((t, i) => i > open && t.kind === "special" && t.text === ">");
    if (close < 0 || tokens.slice(close + 1).some((t) => t.kind !== "space")) return undefined;
    addrTokens = tokens.slice(open + 1, close);
  } else {
    addrTokens = tokens;
  }
  const address = addrTokens
    .filter((t) => t.kind !== "space")
    .map((t) => (t.kind === "quoted" ? `"${t.text}"` : t.text))
    .join("");
  if (addrTokens.some((t) => t.kind === "special" && !"@.[]".includes(t.text))) return undefined;
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1) return undefined;
  return address;
}

type Token = { kind: "atom" | "quoted" | "space" | "special"; text: string };

function oldTokenize(value: string): Token[] | undefined {
  const tokens: Token[] = [];
  let i = 0;
  while (i < value.length) {
    const c = value[i];
    if (c === '"') {
      let text = "";
      i++;
      for (;;) {
        if (i >= value.length) return undefined;
        const q = value[i];
        if (q === "\\" && i + 1 < value.length) {
          text += value[i + 1];
          i += 2;
        } else if (q === '"') {
          i++;
          break;
        } else {
          text += q;
          i++;
        }
      }
      tokens.push({ kind: "quoted", text });
    } else if (c === "(") {
      let depth = 0;
      for (;;) {
        if (i >= value.length) return undefined;
        const q = value[i];
        if (q === "\\") i++;
        else if (q === "(") depth++;
        else if (q === ")" && --depth === 0) {
          i++;
          break;
        }
        i++;
      }
      tokens.push({ kind: "space", text: " " });
    } else if (/\s/.test(c)) {
      i++;
      tokens.push({ kind: "space", text: " " });
    } else if ("<>@,;:.[]\\".includes(c)) {
      tokens.push({ kind: "special", text: c });
      i++;
    } else {
      let text = "";
      while (i < value.length && !/[\s"(<>@,;:.[\]\\]/.test(value[i])) text += value[i++];
      tokens.push({ kind: "atom", text });
    }
  }
  return tokens;
}

function oldParseContentType(value: string | undefined) {
  const params = new Map<string, string>();
  if (value === undefined) return { type: "text/plain", params, repeatedParam: false };
  const pieces = oldSplitParams(value);
  const type = pieces[0].trim().toLowerCase();
  const seen = new Set<string>();
  let repeatedParam = false;
  for (const piece of pieces.slice(1)) {
    const eq = piece.indexOf("=");
    if (eq <= 0) continue;
    const name = piece.slice(0, eq).trim().toLowerCase();
    const baseName = name.replace(/\*.*$/, "");
    if (seen.has(baseName)) repeatedParam = true;
    seen.add(baseName);
    let v = piece.slice(eq + 1).trim();
    if (v.startsWith('"'))
      v = v.slice(1, v.endsWith('"') && v.length > 1 ? -1 : undefined).replace(/\\(.)/g, "$1");
    if (!params.has(name)) params.set(name, v);
  }
  return { type: /^[^\s/]+\/[^\s/]+$/.test(type) ? type : "text/plain", params, repeatedParam };
}

function oldSplitParams(value: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted && c === "\\" && i + 1 < value.length) {
      cur += c + value[i + 1];
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ";" && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Header lookup as it was: every field name decoded and lower-cased, the first match unfolded and trimmed. */
function oldHeaders(bytes: Buffer, names: readonly string[]): { value?: string; count: number }[] {
  const fields: { name: string; valueStart: number; end: number }[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const lf = bytes.indexOf(0x0a, pos);
    const lineEnd = lf < 0 ? bytes.length : lf + 1;
    const contentEnd = lf < 0 ? bytes.length : lf > pos && bytes[lf - 1] === 0x0d ? lf - 1 : lf;
    if (contentEnd === pos) break;
    const first = bytes[pos];
    if ((first === 0x20 || first === 0x09) && fields.length > 0) {
      fields[fields.length - 1].end = contentEnd;
      pos = lineEnd;
      continue;
    }
    let colon = -1;
    for (let i = pos; i < Math.min(contentEnd, pos + 256); i++) {
      const b = bytes[i];
      if (b === 0x3a) {
        colon = i > pos ? i : -1;
        break;
      }
      if (b < 0x21 || b > 0x7e) break;
    }
    if (colon < 0) break;
    fields.push({
      name: bytes.toString("latin1", pos, colon).toLowerCase(),
      valueStart: colon + 1,
      end: contentEnd,
    });
    pos = lineEnd;
  }
  return names.map((name) => {
    const f = fields.find((x) => x.name === name);
    return {
      value: f
        ? bytes
            .toString("utf8", f.valueStart, f.end)
            .replace(/\r?\n(?=[ \t])/g, "")
            .trim()
        : undefined,
      count: fields.filter((x) => x.name === name).length,
    };
  });
}

// ---- Inputs: strings made of the characters these parsers care about, and some they do not. ----

const fromChars = fc.constantFrom(
  ...'ab.@<>"\\()[],;: \t\r\nxZ9-_!'.split(""),
  "\u00a0",
  "\u2028",
  "\u3000",
  "\ufeff",
  "\u00e9",
  "\ud83d",
);
const fromValue = fc.oneof(
  fc.array(fromChars, { maxLength: 40 }).map((a) => a.join("")),
  fc.constantFrom(
    "<bench@chat.example.org>",
    "Alice <alice@example.org>",
    '"Al \\"x\\" ice" <alice@example.org> (comment (nested))',
    "alice@example.org (Alice)",
    "a@b, c@d",
    "group: a@b;",
  ),
);

const ctChars = fc.constantFrom(
  ...'ab/=;" \t\\*xB0-'.split(""),
  "\r\n ",
  "\u00e9",
  "\u2028",
  "\u00a0",
  "\u0001",
  "\u000b",
  "\u007f",
);
const ctValue = fc.oneof(
  fc.array(ctChars, { maxLength: 40 }).map((a) => a.join("")),
  fc.constantFrom(
    'multipart/encrypted; protocol="application/pgp-encrypted";\tboundary="YFrteb74qSXmggbOxZL9dRnhymywAi"',
    'multipart/mixed; boundary="a\\"b"; boundary*0="c"',
    "text/plain; charset=utf-8; format=flowed",
    'Multipart/Report; report-type=delivery-status; boundary="x;y"',
    "text/plain; a=1; b=2; c=3; d=4; e=5; f=6; g=7; h=8; i=9; j=10; a*0=x",
    "text/plain; a=1; b=2; c=3; d=4; e=5; f=6; g=7; h=8; i=9; j=10; k*=x",
  ),
);

const NAMES = ["from", "content-type", "subject", "x-a", "content-transfer-encoding"] as const;
const headerLine = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(
        "From",
        "FROM",
        "Content-Type",
        "content-TYPE",
        "Subject",
        "X-A",
        "X-a-",
        "Content-Transfer-Encoding",
      ),
      fc.constantFrom(":", ": ", " :"),
      fc.array(fc.constantFrom(..."ab <>@é\r".split("")), { maxLength: 12 }).map((a) => a.join("")),
      fc.constantFrom("\r\n", "\n", "\r\n\t", "\r\n ", "\n "),
    )
    .map((t) => t.join("")),
  fc.constantFrom("\r\n", " folded\r\n", "\tmore\r\n", "not a header\r\n", "\u00ffX: y\r\n"),
);

describe("the faster header parsers agree with the ones they replaced", () => {
  it("parseFromHeader", () => {
    fc.assert(
      fc.property(fromValue, (v) => {
        expect(parseFromHeader(v)).toBe(oldParseFromHeader(v));
      }),
      { numRuns: 20_000 },
    );
  });

  it("parseContentType", () => {
    fc.assert(
      fc.property(fc.option(ctValue, { nil: undefined }), (v) => {
        expect(parseContentType(v)).toEqual(oldParseContentType(v));
      }),
      { numRuns: 20_000 },
    );
  });

  it("header, headerCount and the cached Content-Type of an entity", () => {
    fc.assert(
      fc.property(fc.array(headerLine, { maxLength: 12 }), (lines) => {
        const bytes = Buffer.from(`${lines.join("")}\r\nbody`, "utf8");
        const entity = MimeEntity.parse(bytes);
        const old = oldHeaders(bytes, NAMES);
        NAMES.forEach((name, i) => {
          expect(entity.header(name)).toBe(old[i].value);
          expect(entity.header(name.toUpperCase())).toBe(old[i].value);
          expect(entity.headerCount(name)).toBe(old[i].count);
        });
        expect(entity.contentTypeInfo).toEqual(oldParseContentType(old[1].value));
        expect(entity.contentType).toBe(oldParseContentType(old[1].value).type);
      }),
      { numRuns: 10_000 },
    );
  });
});
