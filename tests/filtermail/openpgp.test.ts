import * as openpgp from "openpgp";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  checkArmoredPayload,
  checkBase64Packets,
  decodeStrictBase64,
  decodeStrictBase64Lines,
  decodeStrictBase64Streaming,
  PacketWalker,
  regularLineBreaks,
} from "../../daemons/filtermail/openpgp";
import { armor, editedArmor, packet, partialPacket } from "./pgp";

const PKESK = packet(1, Buffer.alloc(60, 1));
const SKESK = packet(3, Buffer.alloc(30, 3));
const SEIPD = packet(18, Buffer.alloc(500, 7));

describe("PacketWalker", () => {
  const ok = (...packets: Buffer[]) => {
    const w = new PacketWalker();
    return w.push(Buffer.concat(packets)) && w.end();
  };

  it.each<[string, Buffer[], boolean]>([
    ["PKESK then SEIPD", [PKESK, SEIPD], true],
    ["two PKESKs and an SKESK then SEIPD", [PKESK, PKESK, SKESK, SEIPD], true],
    ["a lone SEIPD", [SEIPD], true],
    ["literal data", [packet(11, Buffer.from("bHello world!"))], false],
    ["SEIPD followed by another packet", [SEIPD, PKESK], false],
    ["only session keys", [PKESK], false],
    ["a compressed packet before SEIPD", [packet(8, Buffer.alloc(5)), SEIPD], false],
    ["nothing", [], false],
  ])("%s: %s", (_name, packets, expected) => {
    expect(ok(...packets)).toBe(expected);
  });

  it("refuses a packet that runs past the end", () => {
    expect(ok(PKESK, SEIPD.subarray(0, SEIPD.length - 1))).toBe(false);
  });

  it("accepts partial body lengths and a five-octet length", () => {
    expect(ok(PKESK, partialPacket(18, Buffer.alloc(5000, 9), 9))).toBe(true);
    expect(ok(PKESK, packet(18, Buffer.alloc(70_000, 1)))).toBe(true);
  });

  it("accepts old-format session key packet headers but no indeterminate length", () => {
    const oldPkesk = Buffer.concat([Buffer.from([0x80 | (1 << 2), 10]), Buffer.alloc(10)]);
    expect(ok(oldPkesk, SEIPD)).toBe(true);
    const indeterminate = Buffer.concat([Buffer.from([0x80 | (1 << 2) | 3]), Buffer.alloc(10)]);
    expect(ok(indeterminate, SEIPD)).toBe(false);
  });

  it("gives the same answer however the bytes are split", () => {
    const all = Buffer.concat([PKESK, SKESK, partialPacket(18, Buffer.alloc(3000, 2), 10)]);
    for (const size of [1, 2, 3, 7, 64, 1000]) {
      const w = new PacketWalker();
      for (let i = 0; i < all.length; i += size) w.push(all.subarray(i, i + size));
      expect(w.end()).toBe(true);
    }
  });
});

describe("checkArmoredPayload", () => {
  const good = armor(Buffer.concat([PKESK, SEIPD]));

  it("accepts an armored PKESK + SEIPD with 1, 2 or 3 trailing line breaks", () => {
    expect(checkArmoredPayload(good, "outgoing")).toBe(true);
    expect(checkArmoredPayload(Buffer.concat([good, Buffer.from("\r\n")]), "outgoing")).toBe(true);
    expect(checkArmoredPayload(Buffer.concat([good, Buffer.from("\r\n\r\n")]), "outgoing")).toBe(true);
  });

  it("refuses text that is not armor, and a lone CRC", () => {
    expect(checkArmoredPayload(Buffer.from("HELLOWORLD"), "outgoing")).toBe(false);
    expect(
      checkArmoredPayload(
        Buffer.from("-----BEGIN PGP MESSAGE-----\r\n\r\n=njUN\r\n-----END PGP MESSAGE-----\r\n"),
        "outgoing",
      ),
    ).toBe(false);
    expect(
      checkArmoredPayload(
        Buffer.from("-----BEGIN PGP MESSAGE-----\r\nHi!\r\n-----END PGP MESSAGE-----\r\n"),
        "outgoing",
      ),
    ).toBe(false);
  });

  it("refuses a Version armor header outgoing and skips it incoming", () => {
    const withVersion = armor(Buffer.concat([PKESK, SEIPD]), "Version: ProtonMail\r\n");
    expect(withVersion.toString()).toContain("Version: ProtonMail\r\n\r\n");
    expect(checkArmoredPayload(withVersion, "outgoing")).toBe(false);
    expect(checkArmoredPayload(withVersion, "incoming")).toBe(true);
  });

  it("refuses an armored literal-data packet", () => {
    expect(checkArmoredPayload(armor(packet(11, Buffer.from("bHello"))), "incoming")).toBe(false);
  });

  it("refuses base64 with characters outside the alphabet or padding in the middle", () => {
    const text = good.toString();
    expect(
      checkArmoredPayload(Buffer.from(text.replace(/\r\n([A-Za-z0-9+/]{10})/, "\r\n$1*")), "outgoing"),
    ).toBe(false);
    expect(checkBase64Packets(Buffer.from("AA==\r\nAAAA"))).toBe(false);
  });

  it("accepts a real message encrypted by OpenPGP.js", async () => {
    const { privateKey } = await openpgp.generateKey({
      userIDs: [{ email: "bob@chat.example.org" }],
      format: "object",
    });
    const armored = await openpgp.encrypt({
      message: await openpgp.createMessage({ text: "secret ".repeat(20_000) }),
      encryptionKeys: privateKey.toPublic(),
    });
    const crlf = Buffer.from(armored.replace(/\r?\n/g, "\r\n"));
    expect(checkArmoredPayload(crlf, "outgoing")).toBe(true);
  });
});

describe("strict base64", () => {
  const streamed = (text: Buffer): Buffer | undefined => {
    const chunks: Buffer[] = [];
    return decodeStrictBase64Streaming(text, (c) => (chunks.push(Buffer.from(c)), true))
      ? Buffer.concat(chunks)
      : undefined;
  };

  it("decodes the same, and refuses the same, natively and streaming", () => {
    const char = fc.constantFrom(..."ABQw+/=\r\n -_*\u00ff".split(""));
    fc.assert(
      fc.property(fc.array(char, { maxLength: 40 }), (chars) => {
        const text = Buffer.from(chars.join(""), "latin1");
        expect(decodeStrictBase64(text)).toEqual(streamed(text));
      }),
      { numRuns: 5000 },
    );
  });

  it.each([
    ["QUJD", "ABC"],
    ["QUI=", "AB"],
    ["QQ==", "A"],
    ["QUJD\r\nREVG\r\n", "ABCDEF"],
    ["QU\r\nI=", "AB"],
  ])("decodes %j", (text, expected) => {
    expect(decodeStrictBase64(Buffer.from(text))?.toString()).toBe(expected);
    expect(streamed(Buffer.from(text))?.toString()).toBe(expected);
  });

  it.each(["QUJ", "QUJD=", "QQ=", "QR==", "QU I=", "QU-I", "QU_I", "QQ==QUJD", "QQ===", "QUJ*"])(
    "refuses %j",
    (text) => {
      expect(decodeStrictBase64(Buffer.from(text))).toBeUndefined();
      expect(streamed(Buffer.from(text))).toBeUndefined();
    },
  );

  const armorText = editedArmor(fc.uint8Array({ maxLength: 200 }), [4, 8, 12, 64, 76, 6, 10]).map(
    (a) => a.text,
  );

  it("decodes armor-like text the same line by line, natively and streaming", () => {
    fc.assert(
      fc.property(armorText, fc.constantFrom(1, 20, 100, 16 * 1024), (text, windowChars) => {
        const expected = streamed(text);
        expect(decodeStrictBase64(text)).toEqual(expected);
        const chunks: Buffer[] = [];
        // Copied: the windows share one buffer.
        const lines = decodeStrictBase64Lines(text, (c) => (chunks.push(Buffer.from(c)), true), windowChars);
        // Undefined only hands the text to another decoder; otherwise the answer and the bytes are the same.
        if (lines !== undefined) expect(lines ? Buffer.concat(chunks) : undefined).toEqual(expected);
        const walker = new PacketWalker();
        const streamedVerdict = expected !== undefined && walker.push(expected) && walker.end();
        expect(checkBase64Packets(text)).toBe(streamedVerdict);
      }),
      { numRuns: 20_000 },
    );
  });

  it("decodes the armor of a real message line by line, never falling back", () => {
    const text = Buffer.from(
      Buffer.concat([packet(1, Buffer.alloc(60, 1)), packet(18, Buffer.alloc(100_000, 3))])
        .toString("base64")
        .match(/.{1,76}/g)!
        .join("\r\n") + "\r\n",
    );
    const walker = new PacketWalker();
    expect(decodeStrictBase64Lines(text, (c) => walker.push(c))).toBe(true);
    expect(walker.end()).toBe(true);
    expect(regularLineBreaks(text)).toBe(text.length - text.toString().replace(/\r\n/g, "").length);
  });

  it("counts line breaks at most as often as they occur", () => {
    const char = fc.constantFrom(..."AB=\r\n".split(""));
    fc.assert(
      fc.property(fc.array(char, { maxLength: 60 }), (chars) => {
        const text = Buffer.from(chars.join(""));
        const exact = chars.filter((c) => c === "\r" || c === "\n").length;
        expect(regularLineBreaks(text)).toBeLessThanOrEqual(exact);
      }),
      { numRuns: 5000 },
    );
  });

  it("checks payloads over the native size limit with the streaming decoder", () => {
    const big = Buffer.concat([packet(1, Buffer.alloc(60, 1)), packet(18, Buffer.alloc(2_000_000, 3))]);
    const text = Buffer.from(
      big
        .toString("base64")
        .match(/.{1,76}/g)!
        .join("\r\n"),
    );
    expect(checkBase64Packets(text)).toBe(true);
    const broken = Buffer.from(text);
    broken[1_500_000] = 0x2a;
    expect(checkBase64Packets(broken)).toBe(false);
  });
});
