// Envelope addresses are judged by the mailbox they reach (normalizeAddress), so that "+detail", quoting and
// case cannot carry cleartext past a recipient's enforceE2EEincoming marker or a sender past its rate limit
// (docs/daemons.md, 'Encryption filter', Addresses).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { normalizeAddress, recipientMatchesPassthrough } from "../../daemons/filtermail/address";
import { decide } from "../../daemons/filtermail/verdict";
import { replyText } from "../../daemons/smtp/reply";
import { RawClient, startFilter, startSink, testConfig } from "./harness";
import { DOMAIN, policy, sample } from "./samples";

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const REFUSED = "523 Encryption Needed: Invalid Unencrypted Mail";

describe("normalizeAddress", () => {
  it.each([
    [BOB, BOB],
    [`bob+x@${DOMAIN}`, BOB],
    [`Bob+Tag@CHAT.Example.ORG`, BOB],
    [`bob+@${DOMAIN}`, BOB],
    [`"bob"@${DOMAIN}`, BOB],
    [`"b\\ob"@${DOMAIN}`, BOB],
    [`"bob+x"@${DOMAIN}`, BOB],
    [`first.last@${DOMAIN}`, `first.last@${DOMAIN}`],
    ["Privacy+x@TestRun.org", "Privacy+x@testrun.org"],
    ['"privacy"@testrun.org', "privacy@testrun.org"],
    ["u@[1.3.3.7]", "u@[1.3.3.7]"],
  ])("reads %s as the mailbox %s", (address, mailbox) => {
    expect(normalizeAddress(address, DOMAIN)).toBe(mailbox);
  });

  it.each([
    ["no domain", "bob"],
    ["an empty local part", `@${DOMAIN}`],
    ["two delimiters", `bob+a+b@${DOMAIN}`],
    ["only a detail", `+x@${DOMAIN}`],
    ["a quoted space", `"bob smith"@${DOMAIN}`],
    ["a quoted @", `"bob@elsewhere.example"@${DOMAIN}`],
    ["an unquoted second @", `bob@elsewhere.example@${DOMAIN}`],
    ["an escaped closing quote", `"bob\\"@${DOMAIN}`],
    ["an unbalanced quote", `"bob@${DOMAIN}`],
    ["a quote inside", `"bo"b"@${DOMAIN}`],
    ["empty quotes", `""@${DOMAIN}`],
    ["a double dot", `bob..x@${DOMAIN}`],
    ["a trailing dot in the domain", `bob@${DOMAIN}.`],
    ["non-ASCII", `böb@${DOMAIN}`],
    ["a character no account has", `bob!x@${DOMAIN}`],
    ["a percent hack", `bob%elsewhere.example@${DOMAIN}`],
  ])("is in doubt about %s", (_what, address) => {
    expect(normalizeAddress(address, DOMAIN)).toBeUndefined();
  });
});

describe("decide: incoming cleartext to another form of an enforcing recipient", () => {
  const plainTo = (rcpt: string) =>
    decide(
      "incoming",
      { mailFrom: "carol@other.example", rcptTos: [rcpt] },
      sample("plain", "carol@other.example", rcpt),
      policy({ enforcing: [BOB] }),
    );

  it.each([
    `bob+x@${DOMAIN}`,
    `BOB+x@${DOMAIN}`,
    `"bob"@${DOMAIN}`,
    `"b\\ob"@${DOMAIN}`,
    `"bob+x"@${DOMAIN}`,
    `bob@${DOMAIN.toUpperCase()}`,
  ])("refuses cleartext to %s when bob enforces encryption", (rcpt) => {
    const v = plainTo(rcpt);
    expect(v.accept ? "accept" : replyText(v.reply)).toBe(REFUSED);
  });

  it.each([`bob+a+b@${DOMAIN}`, `"bob smith"@${DOMAIN}`, `+x@${DOMAIN}`, `bob@${DOMAIN}.`])(
    "refuses cleartext to the doubtful address %s even without any marker",
    (rcpt) => {
      const v = decide(
        "incoming",
        { mailFrom: "carol@other.example", rcptTos: [rcpt] },
        sample("plain", "carol@other.example", rcpt),
        policy(),
      );
      expect(v.accept).toBe(false);
    },
  );

  it("still lets cleartext in to a tagged address of a recipient without the marker, looked up untagged", () => {
    const asked: string[] = [];
    const v = decide(
      "incoming",
      { mailFrom: "carol@other.example", rcptTos: [`Carol+News@${DOMAIN}`] },
      sample("plain", "carol@other.example", `carol+news@${DOMAIN}`),
      policy({ incomingCleartextAllowed: (a) => (asked.push(a), true) }),
    );
    expect(v.accept).toBe(true);
    expect(asked).toEqual([`carol@${DOMAIN}`]);
  });

  it("still lets encrypted mail in to a tagged or quoted address", () => {
    for (const rcpt of [`bob+x@${DOMAIN}`, `"bob"@${DOMAIN}`, `bob+a+b@${DOMAIN}`]) {
      const v = decide(
        "incoming",
        { mailFrom: "carol@other.example", rcptTos: [rcpt] },
        sample("encrypted", "carol@other.example", rcpt),
        policy({ enforcing: [BOB] }),
      );
      expect(v.accept).toBe(true);
    }
  });
});

describe("decide: outgoing passthrough lists match mailboxes", () => {
  const plain = sample("plain", ALICE, BOB);
  const send = (mailFrom: string, rcptTos: string[], p: Parameters<typeof policy>[0]) =>
    decide("outgoing", { mailFrom, rcptTos }, sample("plain", mailFrom, rcptTos[0]), policy(p)).accept;

  it("matches a passthrough sender in another case or quoted, as Postfix's login check lets it through", () => {
    expect(send(`Alice@${DOMAIN}`, [BOB], { passthroughSenders: [ALICE] })).toBe(true);
    expect(send(`"alice"@${DOMAIN}`, [BOB], { passthroughSenders: [ALICE] })).toBe(true);
    expect(send(`bob@${DOMAIN}`, [BOB], { passthroughSenders: [ALICE] })).toBe(false);
  });

  it("matches a tagged local passthrough recipient, but a tagged remote one only exactly", () => {
    const echo = `echo@${DOMAIN}`;
    expect(send(ALICE, [`Echo+x@${DOMAIN}`], { passthroughRecipients: [echo] })).toBe(true);
    expect(send(ALICE, ["privacy+x@testrun.org"], { passthroughRecipients: ["privacy@testrun.org"] })).toBe(
      false,
    );
    expect(send(ALICE, ['"privacy"@testrun.org'], { passthroughRecipients: ["privacy@testrun.org"] })).toBe(
      true,
    );
    expect(decide("outgoing", { mailFrom: ALICE, rcptTos: [BOB] }, plain, policy()).accept).toBe(false);
  });

  it("does not let a doubtful recipient match an @domain entry", () => {
    expect(recipientMatchesPassthrough("privacy@X.Y.Z", ["@x.y.z"], DOMAIN)).toBe(true);
    expect(recipientMatchesPassthrough('"a b"@x.y.z', ["@x.y.z"], DOMAIN)).toBe(false);
    expect(recipientMatchesPassthrough("victim@gmail.com@x.y.z", ["@x.y.z"], DOMAIN)).toBe(false);
  });

  it("passes the Autocrypt Setup Message to oneself in another form, but not to a doubtful address", () => {
    const asm = (rcpt: string) =>
      decide("outgoing", { mailFrom: ALICE, rcptTos: [rcpt] }, sample("asm", ALICE, ALICE), policy()).accept;
    expect(asm(`alice+x@${DOMAIN}`)).toBe(true);
    expect(asm(`"alice"@${DOMAIN}`)).toBe(true);
    expect(asm(BOB)).toBe(false);
  });
});

describe("filtermail over SMTP: addresses", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(direction: "outgoing" | "incoming", ini: string) {
    const sink = await startSink();
    const { service } = await startFilter(testConfig(ini), direction, { downstreamPort: sink.port });
    const client = await RawClient.connect(service.port);
    cleanups.push(
      () => sink.close(),
      () => service.close(),
      () => client.close(),
    );
    return { sink, client };
  }

  it("refuses incoming cleartext to user+tag@domain when user's mailbox has the enforceE2EEincoming marker", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fm-addr-"));
    cleanups.push(() => rmSync(dir, { recursive: true }));
    mkdirSync(join(dir, BOB));
    writeFileSync(join(dir, BOB, "enforceE2EEincoming"), "");
    const { sink, client } = await setup("incoming", `mailboxes_dir = ${dir}\n`);
    await client.next();
    await client.command("EHLO x");
    for (const rcpt of [BOB, `bob+x@${DOMAIN}`, `"bob"@${DOMAIN}`]) {
      const from = "carol@other.example";
      expect(await client.transaction(from, [rcpt], sample("plain", from, rcpt))).toBe(REFUSED);
      await client.command("RSET");
    }
    expect(sink.delivered).toHaveLength(0);
  });

  it("rate-limits a sender under all its quoted forms together", async () => {
    const { client } = await setup("outgoing", "max_user_send_burst_size = 2\n");
    await client.next();
    await client.command("EHLO x");
    const answers = [];
    for (const from of [ALICE, `"alice"@${DOMAIN}`, `"al\\ice"@${DOMAIN}`]) {
      answers.push(await client.command(`MAIL FROM:<${from}>`));
      await client.command("RSET");
    }
    expect(answers).toEqual(["250 OK", "250 OK", `450 4.7.1: Too much mail from "al\\ice"@${DOMAIN}`]);
  });

  it("refuses a MAIL FROM in doubt before counting it", async () => {
    const { client } = await setup("outgoing", "");
    await client.next();
    await client.command("EHLO x");
    expect(await client.command(`MAIL FROM:<"alice smith"@${DOMAIN}>`)).toBe(
      `500 Invalid from address <"alice smith"@${DOMAIN}>`,
    );
  });
});
