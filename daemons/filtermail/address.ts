// Addresses as the filter needs them: the one mailbox of a From header (what Python's parseaddr gave
// upstream, but refusing lists and groups like the Rust filter), the mailbox an envelope address reaches
// (normalizeAddress), and passthrough list matching.
// Hand-written with the MIME parsing (mime.ts): only one From address is needed, from a header read in place,
// once per message (docs/decisions.md, 'Hand-written protocol code'; figures in docs/daemons.md, 'Speed').

/**
 * The address of a From header value with exactly one mailbox: `Name <a@b>`, `<a@b>`, `a@b (comment)`.
 * Returns undefined for anything else (no address, several addresses, a group, unbalanced syntax).
 */
export function parseFromHeader(value: string): string | undefined {
  const tokens = tokenize(value);
  if (!tokens) return undefined;
  let open = -1;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== "special") continue;
    if (t.text === "," || t.text === ":" || t.text === ";") return undefined;
    if (open < 0 && t.text === "<") open = i;
  }
  let from = 0;
  let to = tokens.length;
  if (open >= 0) {
    let close = open + 1;
    while (close < tokens.length && !(tokens[close].kind === "special" && tokens[close].text === ">"))
      close++;
    if (close === tokens.length) return undefined;
    for (let i = close + 1; i < tokens.length; i++) if (tokens[i].kind !== "space") return undefined;
    from = open + 1;
    to = close;
  }
  let address = "";
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (t.kind === "space") continue;
    if (t.kind === "special" && !"@.[]".includes(t.text)) return undefined;
    address += t.kind === "quoted" ? `"${t.text}"` : t.text;
  }
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
    const c = value.charCodeAt(i);
    if (c === QUOTE) {
      let text = "";
      let from = ++i; // start of the text not yet added to `text`
      for (;;) {
        if (i >= value.length) return undefined;
        const q = value.charCodeAt(i);
        if (q === BACKSLASH && i + 1 < value.length) {
          text += value.slice(from, i) + value[i + 1];
          i += 2;
          from = i;
        } else if (q === QUOTE) {
          text += value.slice(from, i);
          i++;
          break;
        } else i++;
      }
      tokens.push({ kind: "quoted", text });
    } else if (c === OPEN_PAREN) {
      let depth = 0;
      for (;;) {
        if (i >= value.length) return undefined;
        const q = value.charCodeAt(i);
        if (q === BACKSLASH) i++;
        else if (q === OPEN_PAREN) depth++;
        else if (q === CLOSE_PAREN && --depth === 0) {
          i++;
          break;
        }
        i++;
      }
      tokens.push({ kind: "space", text: " " });
    } else if (isSpace(c)) {
      i++;
      tokens.push({ kind: "space", text: " " });
    } else if (SPECIALS.includes(value[i])) {
      tokens.push({ kind: "special", text: value[i] });
      i++;
    } else {
      const from = i;
      while (i < value.length && !endsAtom(value.charCodeAt(i))) i++;
      tokens.push({ kind: "atom", text: value.slice(from, i) });
    }
  }
  return tokens;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_PAREN = 0x28;
const CLOSE_PAREN = 0x29;
const SPECIALS = "<>@,;:.[]\\";
// The characters that end an atom besides white space: a quote, "(" and the specials.
const ATOM_END = new Uint8Array(128);
for (const ch of `"(${SPECIALS}`) ATOM_END[ch.charCodeAt(0)] = 1;

function endsAtom(c: number): boolean {
  return (c < 0x80 && ATOM_END[c] === 1) || isSpace(c);
}

/** What JavaScript's `\s` matches (the lexer once tested each character with it). */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

// RFC 5321 4.1.2 Dot-string: atoms of atext joined by single dots (ASCII only: see normalizeAddress).
const DOT_STRING = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
// A domain name of ASCII letters, digits and hyphens without a trailing dot, or an address literal.
const DOMAIN = /^(?:[a-z0-9-]+\.)*[a-z0-9-]+$|^\[[\x21-\x5a\x5e-\x7e]+\]$/;
// The local parts accounts can have: doveauth's rule and Dovecot's auth_username_chars
// (templates/dovecot/dovecot.conf.njk), lower-cased like Dovecot's default auth_username_format %Lu.
const ACCOUNT = /^[a-z0-9._-]+$/;
// Postfix's recipient_delimiter (templates/postfix/main.cf.njk) and Dovecot LMTP's default recipient_delimiter.
const RECIPIENT_DELIMITER = "+";

/**
 * The mailbox an envelope address (as sent in MAIL FROM or RCPT TO, quotes kept) reaches, as one plain string
 * to compare and look up; undefined when in doubt. A quoted local part is unquoted (RFC 5321 4.1.2: it names the
 * same mailbox as its unquoted form) and the domain is lower-cased. At the relay's own domain the rest of the
 * delivery path is known, so the address becomes the account Postfix and Dovecot deliver to: lower-cased and
 * without the "+detail". Elsewhere the local part is kept as is: another server's delimiter and case rules are
 * unknown. In doubt means: no "@", a local part that would need its quotes (spaces, "@", "\"...), non-ASCII,
 * a domain with a trailing dot, and at the own domain more than one delimiter or not an account's characters.
 * Callers treat undefined as "not this mailbox", so doubt refuses cleartext and never lets it through.
 */
export function normalizeAddress(address: string, mailDomain: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at <= 0) return undefined;
  const local = unquoteLocalPart(address.slice(0, at));
  const domain = address.slice(at + 1).toLowerCase();
  if (local === undefined || !DOMAIN.test(domain)) return undefined;
  if (domain !== mailDomain.toLowerCase()) return `${local}@${domain}`;
  const account = accountOf(local);
  return account === undefined ? undefined : `${account}@${domain}`;
}

/** A Dot-string local part as it is, a quoted one unquoted if it did not need its quotes; else undefined. */
function unquoteLocalPart(local: string): string | undefined {
  if (!local.startsWith('"')) return DOT_STRING.test(local) ? local : undefined;
  if (local.length < 2 || !local.endsWith('"')) return undefined;
  let text = "";
  for (let i = 1; i < local.length - 1; i++) {
    let c = local[i];
    if (c === "\\") c = local[++i] ?? "";
    else if (c === '"') return undefined;
    if (i >= local.length - 1) return undefined; // the backslash escaped the closing quote
    text += c;
  }
  return DOT_STRING.test(text) ? text : undefined;
}

/** The account a local part of the own domain is delivered to: lower-cased, "+detail" dropped. */
function accountOf(local: string): string | undefined {
  const pieces = local.toLowerCase().split(RECIPIENT_DELIMITER);
  if (pieces.length > 2 || !ACCOUNT.test(pieces[0])) return undefined;
  return pieces[0];
}

/** Whether two envelope addresses reach the same mailbox; false when either is in doubt. */
export function sameMailbox(a: string, b: string, mailDomain: string): boolean {
  const mailbox = normalizeAddress(a, mailDomain);
  return mailbox !== undefined && mailbox === normalizeAddress(b, mailDomain);
}

/**
 * Upstream's `recipient_matches_passthrough` on normalised addresses: the same mailbox as an entry, or the
 * domain of an "@domain" entry (ignoring case, as domains do).
 */
export function recipientMatchesPassthrough(
  recipient: string,
  passthrough: readonly string[],
  mailDomain: string,
): boolean {
  const mailbox = normalizeAddress(recipient, mailDomain);
  if (mailbox === undefined) return false;
  return passthrough.some((p) =>
    p.startsWith("@") ? domainOf(mailbox) === p.slice(1).toLowerCase() : sameMailbox(mailbox, p, mailDomain),
  );
}

/** The domain part of an address, lower-cased; "" when there is no "@". */
export function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at < 0 ? "" : address.slice(at + 1).toLowerCase();
}
