import { describe, expect, it } from "vitest";
import { decide, isEncrypted, isSecureJoin, LOG, type Direction } from "../../daemons/filtermail/verdict";
import { MimeEntity } from "../../daemons/filtermail/mime";
import { replyText } from "../../daemons/smtp/reply";
import { DOMAIN, policy, sample, type SampleName } from "./samples";

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;

function verdictText(direction: Direction, name: SampleName, opts: { enforcing?: string[] } = {}): string {
  const from = name === "mailer-daemon" ? "MAILER-DAEMON@example.org" : ALICE;
  const v = decide(direction, { mailFrom: from, rcptTos: [BOB] }, sample(name, from, BOB), policy(opts));
  return v.accept ? "accept" : replyText(v.reply);
}

const REFUSED = "523 Encryption Needed: Invalid Unencrypted Mail";

// The mail-data README's verdicts (docs/daemons.md, 'Encryption filter'): every sample in both directions.
// Incoming, Bob's mailbox has the enforceE2EEincoming marker (as doveauth creates it for every new account).
describe("decide on the mail-data samples", () => {
  it.each<[SampleName, string, string]>([
    ["encrypted", "accept", "accept"],
    ["fake-encrypted", REFUSED, REFUSED],
    ["literal", REFUSED, REFUSED],
    ["plain", REFUSED, REFUSED],
    ["mdn", REFUSED, REFUSED],
    ["mailer-daemon", REFUSED, "accept"],
    ["securejoin-vc", "accept", "accept"],
    ["securejoin-vc-fake", REFUSED, REFUSED],
    ["asm", REFUSED, REFUSED],
  ])("gives %s outgoing %s and incoming %s", (name, outgoing, incoming) => {
    expect(verdictText("outgoing", name)).toBe(outgoing);
    expect(verdictText("incoming", name, { enforcing: [BOB] })).toBe(incoming);
  });

  it("passes the Autocrypt Setup Message outgoing only when it is sent to oneself", () => {
    const toSelf = decide(
      "outgoing",
      { mailFrom: ALICE, rcptTos: [ALICE] },
      sample("asm", ALICE, ALICE),
      policy(),
    );
    expect(toSelf.accept).toBe(true);
    const toSelfAndBob = decide(
      "outgoing",
      { mailFrom: ALICE, rcptTos: [ALICE, BOB] },
      sample("asm", ALICE, ALICE),
      policy(),
    );
    expect(toSelfAndBob.accept).toBe(false);
  });

  it("lets cleartext in to a local address without the enforceE2EEincoming marker", () => {
    for (const name of ["plain", "mdn", "fake-encrypted", "asm"] as const) {
      expect(verdictText("incoming", name, { enforcing: [] })).toBe("accept");
    }
  });

  it("refuses a mailer-daemon message outgoing even when the envelope matches its From", () => {
    const from = "MAILER-DAEMON@example.org";
    const v = decide(
      "outgoing",
      { mailFrom: from, rcptTos: [BOB] },
      sample("mailer-daemon", from, BOB),
      policy(),
    );
    expect(v.accept ? "accept" : replyText(v.reply)).toBe(REFUSED);
  });
});

describe("decide: From header and envelope sender", () => {
  it("refuses outgoing mail whose From differs from the envelope sender, even encrypted", () => {
    const v = decide(
      "outgoing",
      { mailFrom: ALICE, rcptTos: [BOB] },
      sample("encrypted", "forged@c3.testrun.org", BOB),
      policy(),
    );
    expect(v.accept).toBe(false);
    if (!v.accept) expect(replyText(v.reply)).toBe(`500 Invalid FROM <forged@c3.testrun.org> for <${ALICE}>`);
  });

  it("compares From and envelope sender case-insensitively", () => {
    const v = decide(
      "outgoing",
      { mailFrom: "Alice@Chat.Example.org", rcptTos: [BOB] },
      sample("encrypted", ALICE, BOB),
      policy(),
    );
    expect(v.accept).toBe(true);
  });

  it("refuses a message without From header with 500 Invalid FROM header", () => {
    const msg = Buffer.from("To: bob@chat.example.org\r\nSubject: x\r\n\r\nhi\r\n");
    for (const direction of ["outgoing", "incoming"] as const) {
      const v = decide(direction, { mailFrom: ALICE, rcptTos: [BOB] }, msg, policy());
      expect(v.accept ? "accept" : replyText(v.reply)).toBe("500 Invalid FROM header: ");
    }
  });

  it("refuses a From header with two addresses", () => {
    const msg = Buffer.from(`From: ${ALICE}, eve@evil.example\r\n\r\nhi\r\n`);
    const v = decide("outgoing", { mailFrom: ALICE, rcptTos: [BOB] }, msg, policy());
    expect(v.accept ? "accept" : replyText(v.reply)).toBe(
      `500 Invalid FROM header: ${ALICE}, eve@evil.example`,
    );
  });

  it("reinjects incoming mail with a From that does not match the envelope with the null sender", () => {
    const v = decide(
      "incoming",
      { mailFrom: "bounces+srs@lists.example", rcptTos: [BOB] },
      sample("encrypted", "carol@other.example", BOB),
      policy(),
    );
    expect(v).toMatchObject({ accept: true, mailFrom: "" });
    const same = decide(
      "incoming",
      { mailFrom: "carol@other.example", rcptTos: [BOB] },
      sample("encrypted", "carol@other.example", BOB),
      policy(),
    );
    expect(same).toMatchObject({ accept: true, mailFrom: "carol@other.example" });
  });
});

describe("decide: passthrough senders and recipients", () => {
  const plain = sample("plain", ALICE, "privacy@testrun.org");

  it("lets a passthrough sender send cleartext", () => {
    const v = decide(
      "outgoing",
      { mailFrom: ALICE, rcptTos: [BOB] },
      plain,
      policy({ passthroughSenders: [ALICE] }),
    );
    expect(v.accept).toBe(true);
  });

  it("lets cleartext go to passthrough recipients only when every recipient is one", () => {
    const p = policy({ passthroughRecipients: ["privacy@testrun.org"] });
    expect(decide("outgoing", { mailFrom: ALICE, rcptTos: ["privacy@testrun.org"] }, plain, p).accept).toBe(
      true,
    );
    expect(
      decide(
        "outgoing",
        { mailFrom: ALICE, rcptTos: ["privacy@testrun.org", "privacy@something.org"] },
        plain,
        p,
      ).accept,
    ).toBe(false);
  });

  it("matches an @domain passthrough entry on the whole domain only", () => {
    const p = policy({ passthroughRecipients: ["@x.y.z"] });
    expect(decide("outgoing", { mailFrom: ALICE, rcptTos: ["privacy@x.y.z"] }, plain, p).accept).toBe(true);
    expect(
      decide("outgoing", { mailFrom: ALICE, rcptTos: ["privacy@x.y.z", "something@x.y"] }, plain, p).accept,
    ).toBe(false);
  });

  it("has passthrough off by default", () => {
    expect(
      decide("outgoing", { mailFrom: ALICE, rcptTos: ["privacy@testrun.org"] }, plain, policy()).accept,
    ).toBe(false);
  });
});

describe("decide: incoming recipients", () => {
  it("refuses cleartext when any recipient enforces encryption", () => {
    const v = decide(
      "incoming",
      { mailFrom: ALICE, rcptTos: [`carol@${DOMAIN}`, BOB] },
      sample("plain", ALICE, BOB),
      policy({ enforcing: [BOB] }),
    );
    expect(v.accept).toBe(false);
  });

  it("refuses cleartext to an address outside the relay's own domain", () => {
    const v = decide(
      "incoming",
      { mailFrom: ALICE, rcptTos: ["someone@elsewhere.example"] },
      sample("plain", ALICE, BOB),
      policy(),
    );
    expect(v.accept).toBe(false);
  });

  it("looks the marker up case-insensitively", () => {
    const v = decide(
      "incoming",
      { mailFrom: ALICE, rcptTos: ["BOB@chat.example.org"] },
      sample("plain", ALICE, BOB),
      policy({ enforcing: [BOB] }),
    );
    expect(v.accept).toBe(false);
  });
});

describe("decide: log lines for mtail", () => {
  it("logs the contract lines for mtail (docs/daemons.md, 'Log lines')", () => {
    const log = (d: Direction, name: SampleName, rcpt = BOB) => {
      const from = name === "mailer-daemon" ? "MAILER-DAEMON@example.org" : ALICE;
      return decide(
        d,
        { mailFrom: from, rcptTos: [rcpt] },
        sample(name, from, rcpt),
        policy({ enforcing: [BOB] }),
      ).log;
    };
    expect(log("outgoing", "encrypted")).toEqual([LOG.outgoingEncrypted]);
    expect(log("outgoing", "plain")).toEqual([LOG.outgoingUnencrypted, "Rejected unencrypted mail."]);
    expect(log("incoming", "encrypted")).toEqual(["Incoming: Filtering encrypted mail."]);
    expect(log("incoming", "plain")).toEqual([
      "Incoming: Filtering unencrypted mail.",
      "Rejected unencrypted mail.",
    ]);
    expect(log("incoming", "mailer-daemon")).toEqual([
      "Incoming: Filtering unencrypted mail.",
      "Incoming: Filtering mailer-daemon message from MAILER-DAEMON@example.org",
    ]);
    expect(LOG.outgoingUnencrypted).toBe("Outgoing: Filtering unencrypted mail.");
  });
});

describe("isEncrypted and isSecureJoin", () => {
  const parse = (name: SampleName) => MimeEntity.parse(sample(name, ALICE, BOB));

  it("detects the samples like upstream's check_encrypted and is_securejoin", () => {
    expect(isEncrypted(parse("encrypted"), "outgoing")).toBe(true);
    for (const name of ["plain", "fake-encrypted", "literal", "mdn", "securejoin-vc", "asm"] as const) {
      expect(isEncrypted(parse(name), "outgoing")).toBe(false);
    }
    expect(isSecureJoin(parse("securejoin-vc"))).toBe(true);
    expect(isSecureJoin(parse("securejoin-vc-fake"))).toBe(false);
  });

  it("accepts a vg-request and refuses a Secure-Join header of another value", () => {
    const vg = sample("securejoin-vc", ALICE, BOB).toString().replaceAll("vc-request", "vg-request");
    expect(isSecureJoin(MimeEntity.parse(Buffer.from(vg)))).toBe(true);
    const other = sample("securejoin-vc", ALICE, BOB)
      .toString()
      .replace("Secure-Join: vc-request\r\nSecure", "Secure-Join: vc-auth-required\r\nSecure");
    expect(isSecureJoin(MimeEntity.parse(Buffer.from(other)))).toBe(false);
  });

  it("refuses an encrypted structure with a third part", () => {
    const text = sample("encrypted", ALICE, BOB).toString();
    const boundary = "YFrteb74qSXmggbOxZL9dRnhymywAi";
    const extra = text.replace(
      `--${boundary}--`,
      `--${boundary}\r\nContent-Type: text/plain\r\n\r\nleak\r\n--${boundary}--`,
    );
    expect(extra).not.toBe(text);
    expect(isEncrypted(MimeEntity.parse(Buffer.from(extra)), "outgoing")).toBe(false);
  });

  it("keeps upstream's quirk: a multipart/encrypted with only the version part counts as encrypted", () => {
    const msg = Buffer.from(
      'From: a@b.c\r\nContent-Type: multipart/encrypted; boundary="b"\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--b--\r\n',
    );
    expect(isEncrypted(MimeEntity.parse(msg), "outgoing")).toBe(true);
  });

  it("refuses a multipart/encrypted whose boundary never occurs", () => {
    const msg = Buffer.from(
      'From: a@b.c\r\nContent-Type: multipart/encrypted; boundary="zz"\r\n\r\n--b\r\nVersion: 1\r\n',
    );
    expect(isEncrypted(MimeEntity.parse(msg), "outgoing")).toBe(false);
  });
});
