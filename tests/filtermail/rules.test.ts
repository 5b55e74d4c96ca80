import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseFromHeader, recipientMatchesPassthrough } from "../../daemons/filtermail/address";
import { incomingCleartextAllowed } from "../../daemons/filtermail/index";
import { MimeEntity, splitMultipart } from "../../daemons/filtermail/mime";
import { SendRateLimiter } from "../../daemons/filtermail/ratelimit";
import { REPLIES } from "../../daemons/filtermail/replies";
import { replyText } from "../../daemons/smtp/reply";

describe("REPLIES", () => {
  it.each([
    [REPLIES.encryptionNeeded, "523 Encryption Needed: Invalid Unencrypted Mail"],
    [REPLIES.tooMuchMail("a@b.c"), "450 4.7.1: Too much mail from a@b.c"],
    [REPLIES.invalidFromAddress("bad"), "500 Invalid from address <bad>"],
    [REPLIES.invalidFromHeader("x"), "500 Invalid FROM header: x"],
    [REPLIES.fromMismatch("f@x", "e@y"), "500 Invalid FROM <f@x> for <e@y>"],
    [REPLIES.localError, "451 Local error"],
  ])("has the reference text %#", (r, text) => {
    expect(replyText(r)).toBe(text);
  });
});

describe("SendRateLimiter (GCRA)", () => {
  it("allows a burst of maxUserSendBurstSize at once, then one per 60 s / maxUserSendPerMinute", () => {
    const l = new SendRateLimiter(60, 10);
    const t0 = 1_000_000;
    for (let i = 0; i < 10; i++) expect(l.allow("a@x", t0)).toBe(true);
    expect(l.allow("a@x", t0)).toBe(false);
    expect(l.allow("a@x", t0 + 999)).toBe(false);
    expect(l.allow("a@x", t0 + 1000)).toBe(true);
    expect(l.allow("a@x", t0 + 1000)).toBe(false);
  });

  it("keeps senders apart and ignores the case of the address", () => {
    const l = new SendRateLimiter(60, 1);
    expect(l.allow("a@x", 0)).toBe(true);
    expect(l.allow("A@X", 0)).toBe(false);
    expect(l.allow("b@x", 0)).toBe(true);
  });

  it("forgets senders whose limit has fully recovered", () => {
    const l = new SendRateLimiter(60, 10);
    for (let i = 0; i < 100; i++) l.allow(`u${i}@x`, 0);
    expect(l.size).toBe(100);
    l.allow("late@x", 120_000);
    expect(l.size).toBe(1);
  });
});

describe("parseFromHeader", () => {
  it.each([
    ["alice@chat.example.org", "alice@chat.example.org"],
    ["<alice@chat.example.org>", "alice@chat.example.org"],
    ["Mail Delivery Subsystem <MAILER-DAEMON@example.org>", "MAILER-DAEMON@example.org"],
    ['"Doe, John" <j@x.org>', "j@x.org"],
    ["j@x.org (John)", "j@x.org"],
    ["=?utf-8?q?J=C3=B6rg?= <j@x.org>", "j@x.org"],
    ["jörg@bücher.example", "jörg@bücher.example"],
    ["u@[1.3.3.7]", "u@[1.3.3.7]"],
  ])("reads %s as %s", (value, addr) => {
    expect(parseFromHeader(value)).toBe(addr);
  });

  it.each(["", "undisclosed-recipients:;", "a@x, b@y", "no address", "<a@x", '"open <a@x>', "@x", "a@"])(
    "refuses %j",
    (value) => {
      expect(parseFromHeader(value)).toBeUndefined();
    },
  );
});

describe("recipientMatchesPassthrough", () => {
  it("matches the same mailbox or by @domain; a remote local part keeps its case", () => {
    const match = (r: string, p: string[]) => recipientMatchesPassthrough(r, p, "chat.example.org");
    expect(match("privacy@x.y.z", ["@x.y.z"])).toBe(true);
    expect(match("something@x.y", ["@x.y.z"])).toBe(false);
    expect(match("a@sub.example.com", ["@example.com"])).toBe(false);
    expect(match("Privacy@testrun.org", ["privacy@testrun.org"])).toBe(false);
    expect(match("privacy@TestRun.org", ["privacy@testrun.org"])).toBe(true);
  });
});

describe("MimeEntity", () => {
  it("unfolds headers, takes the first of repeated fields, and finds the body", () => {
    const e = MimeEntity.parse(Buffer.from("Subject: a\r\n b\r\nSubject: second\r\nX: 1\r\n\r\nbody\r\n"));
    expect(e.header("subject")).toBe("a b");
    expect(e.body.toString()).toBe("body\r\n");
  });

  it("treats a header line of binary garbage as the start of the body", () => {
    const e = MimeEntity.parse(
      Buffer.from([0x46, 0x72, 0x6f, 0x6d, 0x3a, 0x20, 0x61, 0x0d, 0x0a, 0xff, 0xfe, 0x00, 0x0d, 0x0a]),
    );
    expect(e.header("from")).toBe("a");
    expect(e.body.length).toBe(5);
  });

  it("does not decode a huge header into a string", () => {
    const e = MimeEntity.parse(Buffer.from(`From: ${"x".repeat(1_000_000)}\r\n\r\n`));
    expect(e.hasHeader("from")).toBe(true);
    expect(e.header("from")).toBeUndefined();
  });

  it("splits parts like RFC 2046: the CRLF before a delimiter belongs to it, transport padding is allowed", () => {
    const body = Buffer.from("preamble\r\n--b \r\nA\r\n--b-not\r\n--b\r\nB\r\n\r\n--b--\r\nepilogue");
    const multipart = splitMultipart(body, "b")!;
    expect(multipart.parts.map(String)).toEqual(["A\r\n--b-not", "B\r\n"]);
    expect(String(multipart.preamble)).toBe("preamble");
    expect(String(multipart.epilogue)).toBe("epilogue");
  });

  it("runs the last part to the end when the closing delimiter is missing", () => {
    const multipart = splitMultipart(Buffer.from("--b\r\nA\r\n--b\r\nB"), "b")!;
    expect(multipart.parts.map(String)).toEqual(["A", "B"]);
    expect(multipart.preamble.length + multipart.epilogue.length).toBe(0);
    expect(splitMultipart(Buffer.from("no delimiter"), "b")).toBeUndefined();
  });
});

describe("incomingCleartextAllowed", () => {
  it("is false for an address with the enforceE2EEincoming marker or one that could leave the mailboxes dir", () => {
    const dir = mkdtempSync(join(tmpdir(), "fm-mbox-"));
    try {
      mkdirSync(join(dir, "bob@chat.example.org"));
      writeFileSync(join(dir, "bob@chat.example.org", "enforceE2EEincoming"), "");
      expect(incomingCleartextAllowed(dir, "bob@chat.example.org")).toBe(false);
      expect(incomingCleartextAllowed(dir, "Bob@chat.example.org")).toBe(false);
      expect(incomingCleartextAllowed(dir, "carol@chat.example.org")).toBe(true);
      expect(incomingCleartextAllowed(dir, "../x@chat.example.org")).toBe(false);
      expect(incomingCleartextAllowed(dir, "nobody")).toBe(false);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
