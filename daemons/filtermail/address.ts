// Addresses as the filter needs them: the one mailbox of a From header (what Python's parseaddr gave
// upstream, but refusing lists and groups like the Rust filter), the mailbox an envelope address reaches
// (normalizeAddress), and passthrough list matching.
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
