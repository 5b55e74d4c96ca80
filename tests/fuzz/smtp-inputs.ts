// Inputs for filtermail's two ports, as Postfix's smtpd_proxy_filter would hand a session over (no AUTH, no TLS:
// Postfix did both): valid commands and whole transactions, the same mutated, garbage, command lines around the
// 4096-byte limit, DATA sections that break the rules (bare LF or CR, lone dots, huge lines, binary), and BDAT
// chunks (RFC 3030) of the right, wrong and absurd sizes. Sent in
// one to five reads; then either the session is closed politely (end any DATA, QUIT) and the client waits for
// the daemon to close, or the client just drops the connection.
import fc from "fast-check";
import { sample } from "../filtermail/samples";
import { garbage, longRun, mutated } from "./mutate";
import { DOMAIN } from "./relay";

export type Direction = "outgoing" | "incoming";

export interface SmtpInput {
  data: Buffer;
  cuts: number[];
  /** Close politely and wait for the daemon to end the session, or drop the connection. */
  polite: boolean;
}

/** What ends any DATA section and then the session. */
const DATA_END_AND_QUIT = Buffer.from("\r\n.\r\nQUIT\r\n");
/** BDAT chunks longer than this in total are not filled up; such a session is dropped instead of ended. */
const MAX_FILL_BYTES = 1 << 20;

/**
 * What ends the session politely whatever state the input left it in: filler for any BDAT chunk still being
 * read (RFC 3030: the next <size> bytes are message data, even when the command was refused), then the end of
 * any DATA section and QUIT. Undefined when the chunks announced are too long to fill.
 */
export function politeEnd(data: Buffer): Buffer | undefined {
  let announced = 0;
  for (const m of data.toString("latin1").matchAll(/(?:^|\n)bdat[ \t]+([0-9]{1,15})/gi))
    announced += Number(m[1]);
  if (announced > MAX_FILL_BYTES) return undefined;
  return Buffer.concat([Buffer.alloc(announced, "x"), DATA_END_AND_QUIT]);
}

const LOCAL = `fuzzaaaa1@${DOMAIN}`;
const FOREIGN = "bob@example.net";
const COMMAND_LIMIT = 4096;

function parties(direction: Direction): { from: fc.Arbitrary<string>; to: fc.Arbitrary<string> } {
  const tricky = [
    `user+tag@${DOMAIN}`,
    `"quoted user"@${DOMAIN}`,
    `UPPER@${DOMAIN}`,
    "",
    "a",
    `../x@${DOMAIN}`,
  ];
  return direction === "outgoing"
    ? {
        from: fc.constantFrom(LOCAL, LOCAL, ...tricky),
        to: fc.constantFrom(FOREIGN, `other@${DOMAIN}`, ...tricky),
      }
    : {
        from: fc.constantFrom(FOREIGN, "", ...tricky),
        to: fc.constantFrom(LOCAL, LOCAL, `healthchk@${DOMAIN}`, ...tricky),
      };
}

/** A message body as the client sends it, dot-stuffed or not, before the end marker. */
function body(from: string, to: string): fc.Arbitrary<Buffer> {
  const samples = fc
    .constantFrom("encrypted", "plain", "securejoin-vc", "mdn")
    .map((n) => sample(n, from, to));
  return fc.oneof(
    { weight: 4, arbitrary: samples },
    { weight: 3, arbitrary: mutated(samples) },
    {
      weight: 1,
      arbitrary: samples.map((m) => Buffer.from(m.toString("latin1").replace(/\r\n/g, "\n"), "latin1")),
    },
    {
      weight: 1,
      arbitrary: samples.map((m) => Buffer.from(m.toString("latin1").replace(/\r\n/g, "\r"), "latin1")),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(".", "..", ".\n", "\r\n.\r", " .", ".\r\n.\r\n").map((s) => Buffer.from(s)),
    },
    { weight: 1, arbitrary: longRun([COMMAND_LIMIT, 1 << 20], 300_000) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)) },
  );
}

function commands(direction: Direction): fc.Arbitrary<string> {
  const { from, to } = parties(direction);
  return fc.oneof(
    fc.constantFrom(
      "EHLO localhost",
      "HELO localhost",
      "DATA",
      "RSET",
      "NOOP",
      "BDAT 10 LAST",
      "STARTTLS",
      "AUTH PLAIN",
    ),
    from.map((f) => `MAIL FROM:<${f}> SIZE=4321 BODY=8BITMIME`),
    from.map((f) => `MAIL FROM:<${f}>`),
    fc.constantFrom(
      "MAIL FROM:<>",
      "MAIL FROM:<a",
      "MAIL FROM: <x@y> SIZE=99999999999999",
      "MAIL FROM:<x@y> SMTPUTF8",
    ),
    to.map((t) => `RCPT TO:<${t}>`),
    to.map((t) => `RCPT TO:<${t}> NOTIFY=DELAY,FAILURE ORCPT=rfc822;${t}`),
    fc.constantFrom("RCPT TO:", "RCPT TO:<>", "QUIT"),
  );
}

/** MAIL, RCPT and a body, pipelined as one piece: after DATA with its end marker, or as BDAT chunks. */
function transaction(direction: Direction): fc.Arbitrary<Buffer> {
  const { from, to } = parties(direction);
  return fc
    .tuple(
      from,
      fc.array(to, { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      fc.double({ min: 0, max: 1, noNaN: true }),
    )
    .chain(([f, ts, chunked, split]) =>
      body(f, ts[0]).map((b) => {
        const envelope = Buffer.from(`MAIL FROM:<${f}>\r\n${ts.map((t) => `RCPT TO:<${t}>\r\n`).join("")}`);
        if (!chunked) return Buffer.concat([envelope, Buffer.from("DATA\r\n"), b, Buffer.from("\r\n.\r\n")]);
        const cut = Math.floor(split * b.length);
        return Buffer.concat([
          envelope,
          Buffer.from(`BDAT ${cut}\r\n`),
          b.subarray(0, cut),
          Buffer.from(`BDAT ${b.length - cut} LAST\r\n`),
          b.subarray(cut),
        ]);
      }),
    );
}

const terminator = fc.oneof(
  { weight: 8, arbitrary: fc.constant("\r\n") },
  { weight: 1, arbitrary: fc.constant("\n") },
  { weight: 1, arbitrary: fc.constant("\r") },
  { weight: 1, arbitrary: fc.constant("") },
);

function item(direction: Direction): fc.Arbitrary<Buffer> {
  const valid = commands(direction).map((s) => Buffer.from(s));
  const piece = fc.oneof(
    { weight: 8, arbitrary: valid },
    { weight: 6, arbitrary: mutated(valid) },
    { weight: 3, arbitrary: transaction(direction) },
    { weight: 1, arbitrary: mutated(transaction(direction)) },
    { weight: 2, arbitrary: garbage },
    { weight: 1, arbitrary: longRun([COMMAND_LIMIT]) },
  );
  return fc.tuple(piece, terminator).map(([p, t]) => Buffer.concat([p, Buffer.from(t)]));
}

export function smtpInput(direction: Direction): fc.Arbitrary<SmtpInput> {
  return fc.record({
    data: fc
      .tuple(fc.boolean(), fc.array(item(direction), { minLength: 1, maxLength: 12 }))
      // Postfix always greets first; random sessions sometimes do not.
      .map(([ehlo, items]) => Buffer.concat([Buffer.from(ehlo ? "EHLO localhost\r\n" : ""), ...items])),
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
    polite: fc.oneof(
      { weight: 4, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
  });
}
