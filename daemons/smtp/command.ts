// Pure parsing of SMTP command lines (RFC 5321 4.1.1): the verb, and the path plus ESMTP parameters of
// MAIL FROM / RCPT TO. No I/O here, so the parsers get plain unit tests.
// Hand-written with the rest of daemons/smtp/, because the filter must be an exact, bounded proxy
// (docs/decisions.md, 'Hand-written protocol code').

export interface Command {
  /** Upper-cased verb, e.g. "MAIL". */
  verb: string;
  /** Everything after the verb and one space, untrimmed at the end except for CRLF. */
  arg: string;
}

export function parseCommand(line: string): Command {
  const m = /^([A-Za-z]+)(?:[ \t]+(.*))?$/s.exec(line);
  if (!m) return { verb: "", arg: line };
  return { verb: m[1].toUpperCase(), arg: m[2] ?? "" };
}

export interface PathArgument {
  /** The address inside <...>, quotes kept as sent; "" for the null path <>. */
  address: string;
  /** ESMTP parameters by upper-cased keyword; a keyword without "=" maps to "". */
  params: Map<string, string>;
}

/**
 * Parses `FROM:<a@b> BODY=8BITMIME` (prefix "FROM") or `TO:<a@b> NOTIFY=NEVER` (prefix "TO").
 * Accepts a space after the colon and an address without angle brackets, as Postfix does.
 * Returns undefined on a syntax error.
 */
export function parsePathArgument(arg: string, prefix: "FROM" | "TO"): PathArgument | undefined {
  const head = `${prefix}:`;
  if (arg.slice(0, head.length).toUpperCase() !== head) return undefined;
  let rest = arg.slice(head.length).replace(/^[ \t]+/, "");
  let address: string;
  if (rest.startsWith("<")) {
    const end = closingBracket(rest);
    if (end < 0) return undefined;
    address = rest.slice(1, end);
    rest = rest.slice(end + 1);
  } else {
    const m = /^[^ \t]+/.exec(rest);
    if (!m) return undefined;
    address = m[0];
    rest = rest.slice(m[0].length);
  }
  // A source route (<@a,@b:user@c>, RFC 5321 4.1.2) is obsolete: keep only the mailbox.
  const routeEnd = address.startsWith("@") ? address.indexOf(":") : -1;
  if (routeEnd >= 0) address = address.slice(routeEnd + 1);
  if (rest !== "" && !/^[ \t]/.test(rest)) return undefined;
  const params = new Map<string, string>();
  for (const word of rest.split(/[ \t]+/)) {
    if (word === "") continue;
    const eq = word.indexOf("=");
    if (eq === 0) return undefined;
    if (eq < 0) params.set(word.toUpperCase(), "");
    else params.set(word.slice(0, eq).toUpperCase(), word.slice(eq + 1));
  }
  return { address, params };
}

/** Index of the ">" closing the path that starts at index 0, skipping quoted strings; -1 if none. */
function closingBracket(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ">") return i;
  }
  return -1;
}
