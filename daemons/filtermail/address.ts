// Addresses as the filter needs them: the one mailbox of a From header (what Python's parseaddr gave
// upstream, but refusing lists and groups like the Rust filter), and passthrough list matching.
// Hand-written with the MIME parsing (mime.ts): only one From address is needed, from a header read in place
// (the filter passes 2894 msg/s at 10 clients for 4 KB messages, measured with `npm run bench -- filtermail` on
// 2 cores; docs/decisions.md, 'Hand-written protocol code').

/**
 * The address of a From header value with exactly one mailbox: `Name <a@b>`, `<a@b>`, `a@b (comment)`.
 * Returns undefined for anything else (no address, several addresses, a group, unbalanced syntax).
 */
export function parseFromHeader(value: string): string | undefined {
  const tokens = tokenize(value);
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

/** RFC 5322 3.2 lexing: quoted strings, comments (dropped), specials, runs of other characters. */
function tokenize(value: string): Token[] | undefined {
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

/** Upstream's `recipient_matches_passthrough`: exact match, or an "@domain" entry matching the end. Case-sensitive. */
export function recipientMatchesPassthrough(recipient: string, passthrough: readonly string[]): boolean {
  return passthrough.some((p) => recipient === p || (p.startsWith("@") && recipient.endsWith(p)));
}

/** The domain part of an address, lower-cased; "" when there is no "@". */
export function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "" : address.slice(at + 1).toLowerCase();
}
