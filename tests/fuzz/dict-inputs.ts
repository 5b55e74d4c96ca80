// Inputs for the dict sockets: the lines Dovecot sends each daemon (docs/daemons.md, 'Dict protocol'), the same
// lines mutated, garbage, lines around the 64 KiB limit, huge counts, many transactions, the empty end-of-session
// line with more input after it, and one line pipelined hundreds of times (past the point where the server pauses
// reading). The whole input arrives in one to five reads, and the client either half-closes
// and waits for the daemon to close, or drops the connection.
import fc from "fast-check";
import { garbage, longRun, mutated } from "./mutate";
import { DOMAIN } from "./relay";
import type { Finish } from "./session";

/** The dict server's limits (daemons/dictproxy/): longest request line, open transactions per connection. */
export const MAX_LINE_BYTES = 64 * 1024;
const MAX_TRANSACTIONS_PER_CONNECTION = 64;
/** Enough pipelined lines to fill the server's read-ahead (it pauses reading at 128 KiB or, earlier, 256 lines). */
const MANY_LINES = 800;

export type DictDaemon = "doveauth" | "metadata" | "lastlogin";

export interface DictInput {
  data: Buffer;
  /** Where the data is cut into reads, as fractions of its length. */
  cuts: number[];
  finish: Extract<Finish, "end" | "destroy">;
}

/** Fuzz accounts: valid new ones (9-character local parts), and names that try to leave the mailboxes dir. */
const user = fc.constantFrom(
  `fuzzaaaa1@${DOMAIN}`,
  `fuzzaaaa2@${DOMAIN}`,
  `FUZZAAAA3@${DOMAIN}`,
  `fuzz.aa-4@${DOMAIN}`,
  `..@${DOMAIN}`,
  `.@${DOMAIN}`,
  `../../../x@${DOMAIN}`,
  `a/b@${DOMAIN}`,
  `fuzz\\"a@${DOMAIN}`,
  `fuzzaaaa5@${DOMAIN}/..`,
  `fuzzaaaa6@example.net`,
  "nodomain",
  "",
  `üñíçødé@${DOMAIN}`,
);
const password = fc.oneof(
  fc.constantFrom(
    "fuzz-password-1",
    "short",
    "",
    'with\\"quote-123',
    "back\\\\slash-123",
    "tab\u0001tin-side1",
  ),
  fc.string({ maxLength: 40 }),
);
const tid = fc.constantFrom("1", "2", "17", "", "4294967296");
const guid = fc.constantFrom("0123", "", "..", "x/y");
const hello = fc.constant("H3\t2\t0\t\tchatmail");
const iterate = fc.oneof(
  fc.constant("I0\t0\tshared/userdb/\t"),
  fc
    .tuple(
      fc.constantFrom("0", "1", "4294967295", "99999999999", "-1", ""),
      fc.constantFrom("0", "1", "9999999999", "x"),
    )
    .map(([flags, max]) => `I${flags}\t${max}\tshared/userdb/`),
);
const SERVER_ENTRY = "shared/0123/vendor/vendor.dovecot/pvt/server/vendor/deltachat/";

const VALID: Record<DictDaemon, fc.Arbitrary<string>> = {
  doveauth: fc.oneof(
    fc.tuple(password, user).map(([p, u]) => `Lshared/passdb/${p}"${u}\t${u}`),
    user.map((u) => `Lshared/userdb/${u}\t${u}`),
    user.map((u) => `Lshared/userdb/${u}`),
    fc.constantFrom("Lshared/passdb/", "Lshared/", "Lprivate/passdb/x", "Lshared/other/x"),
    iterate,
    hello,
  ),
  metadata: fc.oneof(
    fc.tuple(tid, user).map(([t, u]) => `B${t}\t${u}`),
    fc
      .tuple(tid, guid, fc.string({ maxLength: 30 }))
      .map(([t, g, v]) => `S${t}\tpriv/${g}/devicetoken\t${v}`),
    fc.tuple(tid, guid).map(([t, g]) => `S${t}\tpriv/${g}/messagenew`),
    fc.tuple(tid, guid).map(([t, g]) => `U${t}\tpriv/${g}/devicetoken`),
    tid.map((t) => `C${t}`),
    tid.map((t) => `R${t}`),
    fc.tuple(guid, user).map(([g, u]) => `Lpriv/${g}/devicetoken\t${u}`),
    fc
      .tuple(fc.constantFrom("irohrelay", "maxsmtprecipients", "turn", "x"), user)
      .map(([e, u]) => `L${SERVER_ENTRY}${e}\t${u}`),
    hello,
  ),
  lastlogin: fc.oneof(
    fc.tuple(tid, user).map(([t, u]) => `B${t}\t${u}`),
    fc
      .tuple(
        tid,
        user,
        fc.oneof(
          fc.nat({ max: 2_000_000_000 }).map(String),
          fc.constantFrom("", "-1", "1e9", "99999999999999"),
        ),
      )
      .map(([t, u, ts]) => `S${t}\tshared/last-login/${u}\t${ts}`),
    tid.map((t) => `C${t}`),
    user.map((u) => `Lshared/last-login/${u}\t${u}`),
    iterate,
    hello,
  ),
};

/** More transactions than a connection may hold, each with a set, then their commits. */
const manyTransactions = fc
  .integer({ min: MAX_TRANSACTIONS_PER_CONNECTION - 1, max: MAX_TRANSACTIONS_PER_CONNECTION + 8 })
  .map((n) => {
    const ids = Array.from({ length: n }, (_, i) => String(i));
    return Buffer.from(
      [
        ...ids.map((i) => `B${i}\tfuzzaaaa1@${DOMAIN}`),
        ...ids.map((i) => `S${i}\tpriv/0123/devicetoken\tt${i}`),
        ...ids.map((i) => `C${i}`),
      ].join("\n"),
    );
  });

function line(daemon: DictDaemon): fc.Arbitrary<Buffer> {
  const valid = VALID[daemon].map((s) => Buffer.from(s));
  return fc.oneof(
    { weight: 6, arbitrary: valid },
    { weight: 6, arbitrary: mutated(valid) },
    { weight: 2, arbitrary: garbage },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) }, // the end of the session, input may follow
    { weight: 1, arbitrary: longRun([MAX_LINE_BYTES]) },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, longRun([MAX_LINE_BYTES])).map(([v, l]) => Buffer.concat([v, l])),
    },
    { weight: 1, arbitrary: manyTransactions },
  );
}

const terminator = fc.oneof(
  { weight: 8, arbitrary: fc.constant("\n") },
  { weight: 1, arbitrary: fc.constant("\r\n") },
  { weight: 1, arbitrary: fc.constant("") },
);

/** One line sent many times in a row (Dovecot pipelines), sometimes past the read-pause threshold. */
function pipelined(daemon: DictDaemon): fc.Arbitrary<Buffer> {
  return fc
    .tuple(VALID[daemon], fc.integer({ min: 2, max: MANY_LINES }))
    .map(([l, n]) => Buffer.from(`${l}\n`.repeat(n)));
}

export function dictInput(daemon: DictDaemon): fc.Arbitrary<DictInput> {
  const item = fc.oneof(
    {
      weight: 12,
      arbitrary: fc.tuple(line(daemon), terminator).map(([l, t]) => Buffer.concat([l, Buffer.from(t)])),
    },
    { weight: 1, arbitrary: pipelined(daemon) },
  );
  return fc.record({
    data: fc.array(item, { minLength: 1, maxLength: 20 }).map((items) => Buffer.concat(items)),
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }),
    finish: fc.oneof(
      { weight: 4, arbitrary: fc.constant("end" as const) },
      { weight: 1, arbitrary: fc.constant("destroy" as const) },
    ),
  });
}
