// What filtermail must send back to any input: a 220 greeting, then only well-formed replies (RFC 5321 4.2:
// three digits, space or hyphen; daemons/smtp/reply.ts promises no control characters and at most 512 octets
// per line including CRLF), never the 451 4.3.0 that means a handler threw, and, after the polite end, a last
// reply of 221 (QUIT) or 421 (the daemon ended the session) before it closes.

const REPLY_LINE = /^[2-5]\d\d[ -]/;
const MAX_REPLY_LINE_OCTETS = 512;

export function replyProblem(output: Buffer, politeEnd: boolean): string | undefined {
  const text = output.toString("latin1");
  const lines = text.split("\r\n");
  const partial = lines.pop() as string;
  if (politeEnd && partial !== "")
    return `output ends inside a reply: ${JSON.stringify(partial.slice(0, 80))}`;
  if (lines.length === 0) return politeEnd ? "no greeting" : undefined;
  if (!lines[0].startsWith("220 ")) return `greeting ${JSON.stringify(lines[0].slice(0, 80))}`;
  for (const line of lines) {
    if (!REPLY_LINE.test(line)) return `not a reply line: ${JSON.stringify(line.slice(0, 80))}`;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(line))
      return `control character in reply: ${JSON.stringify(line.slice(0, 120))}`;
    if (line.length + 2 > MAX_REPLY_LINE_OCTETS)
      return `reply line of ${line.length + 2} octets: ${JSON.stringify(Buffer.from(line, "latin1").toString("utf8").slice(0, 80))}...`;
    if (line.startsWith("451") && line.includes("4.3.0 Local error")) return `handler error: ${line}`;
  }
  const last = lines[lines.length - 1];
  if (politeEnd && !/^(221|421) /.test(last))
    return `last reply before close: ${JSON.stringify(last.slice(0, 80))}`;
  return undefined;
}
