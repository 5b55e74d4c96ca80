// Text outside the checked parts: a preamble or epilogue around the parts, or a repeated structural header
// that another reader would take instead of the filter's, must not carry cleartext past the filter
// (docs/daemons.md, 'Encryption filter', Text around the parts).
import { describe, expect, it } from "vitest";
import { decide, isEncrypted, isSecureJoin, type Direction } from "../../daemons/filtermail/verdict";
import { MimeEntity } from "../../daemons/filtermail/mime";
import { DOMAIN, policy, sample } from "./samples";

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const ENCRYPTED_BOUNDARY = "YFrteb74qSXmggbOxZL9dRnhymywAi";
const SECURE_JOIN_BOUNDARY = "Gl92xgZjOShJ5PGHntqYkoo2OK2Dvi";
const THUNDERBIRD_PREAMBLE = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)";
const SECRET = "Hi Bob, the meeting is at noon. Do not tell anyone.";

/** The encrypted sample, changed by `edit` (which must change it). */
function encrypted(edit: (text: string) => string): Buffer {
  return edited(sample("encrypted", ALICE, BOB), edit);
}

function secureJoin(edit: (text: string) => string): Buffer {
  return edited(sample("securejoin-vc", ALICE, BOB), edit);
}

function edited(message: Buffer, edit: (text: string) => string): Buffer {
  const text = message.toString();
  const changed = edit(text);
  expect(changed).not.toBe(text);
  return Buffer.from(changed);
}

/** Puts `preamble` (lines joined with CRLF) between the header section and the first delimiter. */
const withPreamble = (boundary: string, preamble: string) => (text: string) =>
  text.replace(`\r\n\r\n\r\n--${boundary}\r\n`, `\r\n\r\n${preamble}\r\n--${boundary}\r\n`);
const withEpilogue = (boundary: string, epilogue: string) => (text: string) =>
  text.replace(`--${boundary}--\r\n`, `--${boundary}--\r\n${epilogue}`);
/** Adds header lines at the end of the top-level header section, after the sample's own Content-Type. */
const withHeaders = (lines: string) => (text: string) => text.replace("\r\n\r\n", `\r\n${lines}\r\n`);
/** Adds header lines to the encrypted sample's version part (n = 0) or payload part (n = 1). */
const withPartHeaders = (n: 0 | 1, lines: string) => (text: string) => {
  const first =
    n === 0
      ? "Content-Type: application/pgp-encrypted\r\n"
      : 'Content-Type: application/octet-stream; name="encrypted.asc"\r\n';
  return text.replace(first, `${first}${lines}`);
};

function verdicts(message: Buffer): Record<Direction, boolean> {
  const p = policy({ enforcing: [BOB] });
  return {
    outgoing: decide("outgoing", { mailFrom: ALICE, rcptTos: [BOB] }, message, p).accept,
    incoming: decide("incoming", { mailFrom: ALICE, rcptTos: [BOB] }, message, p).accept,
  };
}

const PASSES = { outgoing: true, incoming: true };
const REFUSED = { outgoing: false, incoming: false };

describe("encrypted mail: preamble and epilogue", () => {
  it.each<[string, Buffer]>([
    ["Thunderbird's preamble", encrypted(withPreamble(ENCRYPTED_BOUNDARY, THUNDERBIRD_PREAMBLE))],
    [
      "Thunderbird's preamble between blank lines",
      encrypted(withPreamble(ENCRYPTED_BOUNDARY, `\r\n${THUNDERBIRD_PREAMBLE}\r\n \t\r\n`)),
    ],
    [
      "the older RFC 2440 preamble",
      encrypted(
        withPreamble(ENCRYPTED_BOUNDARY, "This is an OpenPGP/MIME encrypted message (RFC 2440 and 3156)"),
      ),
    ],
    [
      "the generic MIME preamble",
      encrypted(withPreamble(ENCRYPTED_BOUNDARY, "This is a multi-part message in MIME format.")),
    ],
    ["a blank preamble", encrypted(withPreamble(ENCRYPTED_BOUNDARY, " \t\r\n\r\n"))],
    ["an epilogue of line breaks and blanks", encrypted(withEpilogue(ENCRYPTED_BOUNDARY, "\r\n \r\n\t\r\n"))],
    [
      "a Content-Transfer-Encoding: 7bit on the multipart",
      encrypted(withHeaders("Content-Transfer-Encoding: 7bit\r\n")),
    ],
  ])("passes with %s", (_what, message) => {
    expect(verdicts(message)).toEqual(PASSES);
  });

  it.each<[string, Buffer]>([
    ["cleartext in the preamble", encrypted(withPreamble(ENCRYPTED_BOUNDARY, SECRET))],
    [
      "cleartext after Thunderbird's preamble",
      encrypted(withPreamble(ENCRYPTED_BOUNDARY, `${THUNDERBIRD_PREAMBLE}\r\n${SECRET}`)),
    ],
    [
      "cleartext on the line of Thunderbird's preamble",
      encrypted(withPreamble(ENCRYPTED_BOUNDARY, `${THUNDERBIRD_PREAMBLE} ${SECRET}`)),
    ],
    ["cleartext in the epilogue", encrypted(withEpilogue(ENCRYPTED_BOUNDARY, `\r\n${SECRET}\r\n`))],
    [
      "cleartext in a line that only looks like a delimiter",
      encrypted(withPreamble(ENCRYPTED_BOUNDARY, `--${ENCRYPTED_BOUNDARY} ${SECRET}`)),
    ],
    [
      "a header line with a blank before its colon, read as the start of the body",
      encrypted(withHeaders(`X-Note : ${SECRET}\r\n`)),
    ],
  ])("refuses %s", (_what, message) => {
    expect(verdicts(message)).toEqual(REFUSED);
  });
});

describe("encrypted mail: repeated structural headers", () => {
  it.each<[string, Buffer]>([
    [
      "a second top-level Content-Type",
      encrypted(withHeaders("Content-Type: text/plain; charset=utf-8\r\n")),
    ],
    [
      "a second top-level Content-Transfer-Encoding",
      encrypted(withHeaders("Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n")),
    ],
    ["a second MIME-Version", encrypted(withHeaders("MIME-Version: 1.0\r\n"))],
    [
      "a base64 Content-Transfer-Encoding on the multipart",
      encrypted(withHeaders("Content-Transfer-Encoding: base64\r\n")),
    ],
    [
      "a second boundary parameter",
      encrypted((t) =>
        t.replace(`boundary="${ENCRYPTED_BOUNDARY}"`, `boundary="${ENCRYPTED_BOUNDARY}"; boundary="other"`),
      ),
    ],
    [
      "an RFC 2231 boundary next to the plain one",
      encrypted((t) =>
        t.replace(
          `boundary="${ENCRYPTED_BOUNDARY}"`,
          `boundary="${ENCRYPTED_BOUNDARY}"; boundary*=us-ascii''other`,
        ),
      ),
    ],
    [
      "a second Content-Type in the version part",
      encrypted(withPartHeaders(0, "Content-Type: text/plain\r\n")),
    ],
    [
      "a second Content-Type in the payload part",
      encrypted(withPartHeaders(1, "Content-Type: text/plain\r\n")),
    ],
    [
      "a second Content-Transfer-Encoding in the payload part",
      encrypted(
        withPartHeaders(1, "Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n"),
      ),
    ],
  ])("refuses %s", (_what, message) => {
    expect(verdicts(message)).toEqual(REFUSED);
    expect(isEncrypted(MimeEntity.parse(message), "incoming")).toBe(false);
  });
});

describe("Secure-Join requests: nothing around the one part", () => {
  it("still passes the sample with its blank preamble and epilogue", () => {
    expect(isSecureJoin(MimeEntity.parse(sample("securejoin-vc", ALICE, BOB)))).toBe(true);
  });

  it.each<[string, Buffer]>([
    ["cleartext in the preamble", secureJoin(withPreamble(SECURE_JOIN_BOUNDARY, SECRET))],
    ["cleartext in the epilogue", secureJoin(withEpilogue(SECURE_JOIN_BOUNDARY, SECRET))],
    [
      "the OpenPGP preamble (no encrypted part follows)",
      secureJoin(withPreamble(SECURE_JOIN_BOUNDARY, THUNDERBIRD_PREAMBLE)),
    ],
    ["a second top-level Content-Type", secureJoin(withHeaders("Content-Type: text/plain\r\n"))],
    [
      "a second Content-Type in the part",
      secureJoin((t) =>
        t.replace(
          "Content-Type: text/plain; charset=utf-8\r\n",
          "Content-Type: text/plain; charset=utf-8\r\nContent-Type: text/html\r\n",
        ),
      ),
    ],
  ])("refuses %s", (_what, message) => {
    expect(isSecureJoin(MimeEntity.parse(message))).toBe(false);
    expect(verdicts(message)).toEqual(REFUSED);
  });
});
