// SMTP replies as values: a three-digit code and one or more text lines (RFC 5321 section 4.2).
// Both the server and the client side of the proxy use this type, so a downstream answer can be passed
// through to the upstream client unchanged.
// Hand-written with the rest of daemons/smtp/, because the filter must be an exact, bounded proxy
// (docs/decisions.md, 'Hand-written protocol code').

export interface Reply {
  readonly code: number;
  /** Text of each reply line, without the code; one entry for a single-line reply. */
  readonly lines: readonly string[];
}

// A reply line must stay one line and reasonably short whatever a client put into it (a huge From header,
// control characters): RFC 5321 4.5.3.1.5 allows 512 octets per reply line including the code and CRLF.
const MAX_REPLY_TEXT_CHARS = 400;

/** Makes one reply line safe to send: no CR/LF or other control characters, bounded length. */
export function sanitizeReplyText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, "?");
  return clean.length > MAX_REPLY_TEXT_CHARS ? `${clean.slice(0, MAX_REPLY_TEXT_CHARS)}...` : clean;
}

export function reply(code: number, ...lines: string[]): Reply {
  return { code, lines: lines.length === 0 ? [""] : lines.map(sanitizeReplyText) };
}

/** Wire form: "250-first\r\n250 last\r\n". */
export function formatReply(r: Reply): string {
  if (r.lines.length === 1) return `${r.code} ${r.lines[0]}\r\n`;
  const last = r.lines.length - 1;
  return r.lines.map((line, i) => `${r.code}${i === last ? " " : "-"}${line}\r\n`).join("");
}

/** Single-line text form used in logs and tests: "250 OK", multi-line joined with " / ". */
export function replyText(r: Reply): string {
  return `${r.code} ${r.lines.join(" / ")}`;
}

export function isPositive(r: Reply): boolean {
  return r.code >= 200 && r.code < 300;
}
