// The Dovecot dict proxy protocol (dict-client, protocol 3 as sent by Dovecot 2.3) as pure functions: one request
// line in, one typed request out; one reply value out, one line out. docs/daemons.md, 'Dict protocol', lists the
// commands. Every field is tab-escaped by Dovecot with \001 (str_tabescape), which we undo here, so that a
// password with a TAB or a `"` reaches doveauth intact (upstream chatmaild never unescaped; docs/decisions.md,
// "Unescaping Dovecot's fields").
// Hand-written rather than a library: Dovecot expects these exact lines (bare O/N/F, the empty line that ends an
// iteration, no transaction id on commit, \001 escaping), and every IMAP or SMTP login passes through here.
// Every login passes through parseRequest and a reply formatter, so they scan each line with indexOf rather than
// split, map or a regex replace (`npm run bench -- auth`; docs/decisions.md, 'Hand-written protocol code').

/** A request line that cannot be understood; the server logs it and answers F where an answer is due. */
export class DictProtocolError extends Error {}

export type DictRequest =
  | { kind: "hello"; fields: string[] }
  | { kind: "lookup"; key: string; user: string | undefined }
  | { kind: "iterate"; flags: number; maxRows: number; path: string; user: string | undefined }
  | { kind: "begin"; tid: string; user: string }
  | { kind: "set"; tid: string; key: string; value: string }
  | { kind: "unset"; tid: string; key: string }
  | { kind: "commit"; tid: string }
  | { kind: "rollback"; tid: string }
  | { kind: "unknown"; command: string };

/** Commands whose sender waits for a reply line; an error there still gets a reply (`F`) so Dovecot never hangs. */
export const COMMANDS_WITH_REPLY = new Set(["L", "I", "C"]);

// Dovecot's lib/strescape.c: \001 then 0, 1, t, r or n (LF is `n`, as Dovecot's own test-strescape.c checks).
const UNESCAPES: Record<string, string> = { "0": "\0", "1": "\u0001", t: "\t", r: "\r", n: "\n" };
const ESCAPES: Record<string, string> = { "\0": "0", "\u0001": "1", "\t": "t", "\r": "r", "\n": "n" };

/** Undoes Dovecot's \001 tab-escaping of one field. */
export function unescapeField(field: string): string {
  if (!field.includes("\u0001")) return field;
  let out = "";
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (c !== "\u0001") {
      out += c;
      continue;
    }
    const next = field[++i];
    const plain = next === undefined ? undefined : UNESCAPES[next];
    if (plain === undefined) throw new DictProtocolError(`bad \\001 escape at offset ${i - 1}`);
    out += plain;
  }
  return out;
}

const NEEDS_ESCAPE = /[\0\u0001\t\r\n]/;
const NEEDS_ESCAPE_ALL = /[\0\u0001\t\r\n]/g;

/** Tab-escapes a reply value the way Dovecot's dict client unescapes it. */
export function escapeField(value: string): string {
  // Values almost never hold these characters; testing first spares the replace and its callback.
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(NEEDS_ESCAPE_ALL, (c) => `\u0001${ESCAPES[c]}`);
}

function need(fields: string[], count: number, command: string, what: string): void {
  if (fields.length < count) throw new DictProtocolError(`${command} needs ${what}`);
}

function integerField(text: string, name: string): number {
  if (!/^\d{1,10}$/.test(text))
    throw new DictProtocolError(`${name} must be a decimal number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The unescaped TAB-separated fields after the command character. */
function fields(line: string): string[] {
  const out: string[] = [];
  let from = 1;
  for (let tab = line.indexOf("\t", from); tab !== -1; tab = line.indexOf("\t", from)) {
    out.push(unescapeField(line.slice(from, tab)));
    from = tab + 1;
  }
  out.push(unescapeField(line.slice(from)));
  return out;
}

/** Parses one request line (without its LF). Throws DictProtocolError for a malformed line. */
export function parseRequest(line: string): DictRequest {
  if (line.includes("\0"))
    throw new DictProtocolError("raw NUL byte in request (Dovecot escapes NUL as \\0010)");
  const command = line[0] ?? "";
  const f = fields(line);
  switch (command) {
    case "H":
      return { kind: "hello", fields: f };
    case "L":
      need(f, 1, "L", "a key");
      return { kind: "lookup", key: f[0], user: f[1] || undefined };
    case "I":
      need(f, 3, "I", "flags, max rows and a path");
      return {
        kind: "iterate",
        flags: integerField(f[0], "iterate flags"),
        maxRows: integerField(f[1], "iterate max rows"),
        path: f[2],
        user: f[3] || undefined,
      };
    case "B":
      need(f, 2, "B", "a transaction id and a user");
      return { kind: "begin", tid: f[0], user: f[1] };
    case "S":
      need(f, 2, "S", "a transaction id and a key");
      // A missing value is an empty one: the push hook sets /private/messagenew to "".
      return { kind: "set", tid: f[0], key: f[1], value: f[2] ?? "" };
    case "U":
      need(f, 2, "U", "a transaction id and a key");
      return { kind: "unset", tid: f[0], key: f[1] };
    case "C":
      return { kind: "commit", tid: f[0] };
    case "R":
      return { kind: "rollback", tid: f[0] };
    default:
      return { kind: "unknown", command };
  }
}

/** What a lookup handler answers: a value, not found, or failure (Dovecot then reports a temporary error). */
export type LookupResult = { found: true; value: string; line?: string } | { found: false } | "fail";

export const NOT_FOUND: LookupResult = { found: false };
export const found = (value: string): LookupResult => ({ found: true, value });
/** A found result with its reply line made once, for a result that answers many lookups (doveauth's kept ones). */
export const foundReusable = (value: string): LookupResult => ({
  found: true,
  value,
  line: `O${escapeField(value)}\n`,
});

/** The reply line (with LF) for a lookup result: `O<value>`, `N` or `F`. */
export function formatLookupReply(result: LookupResult): string {
  if (result === "fail") return "F\n";
  if (!result.found) return "N\n";
  return result.line ?? `O${escapeField(result.value)}\n`;
}

/** Iterate rows then the empty end line that Dovecot waits for ("If we don't return empty line Dovecot will timeout"). */
export function formatIterateReply(rows: Iterable<readonly [string, string]>): string {
  let out = "";
  for (const [key, value] of rows) out += `O${escapeField(key)}\t${escapeField(value)}\n`;
  return `${out}\n`;
}

/** Commit answer: bare `O`/`F` without the transaction id, as chatmaild has always answered Dovecot 2.3. */
export function formatCommitReply(ok: boolean): string {
  return ok ? "O\n" : "F\n";
}

/**
 * JSON in the spelling of Python's json.dumps defaults (`", "` and `": "` separators, non-ASCII as \uXXXX), so
 * replies stay byte-identical to upstream's and stay ASCII on the wire.
 */
export function pythonJson(value: Record<string, string>): string {
  let out = "{";
  for (const key in value) {
    if (out.length > 1) out += ", ";
    out += `${JSON.stringify(key)}: ${JSON.stringify(value[key])}`;
  }
  out += "}";
  // JSON's own characters are ASCII, so escaping the whole text equals escaping each string; most have nothing.
  if (!NON_ASCII.test(out)) return out;
  return out.replace(NON_ASCII_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const NON_ASCII = /[\u007f-\uffff]/;
const NON_ASCII_ALL = /[\u007f-\uffff]/g;
