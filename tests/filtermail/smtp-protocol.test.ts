import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCommand, parsePathArgument } from "../../daemons/smtp/command";
import { DataReader, stuffedSlices } from "../../daemons/smtp/data";
import { formatReply, reply } from "../../daemons/smtp/reply";
import { ReplyReader } from "../../daemons/smtp/reply-reader";

function readAll(wire: Buffer, chunkSize: number, max = 1 << 30) {
  const r = new DataReader(max);
  for (let i = 0; i < wire.length; i += chunkSize) {
    const chunk = wire.subarray(i, i + chunkSize);
    const res = r.feed(chunk);
    if (res.done)
      return {
        message: r.take(),
        rest: Buffer.concat([chunk.subarray(res.consumed), wire.subarray(i + chunkSize)]),
        tooBig: r.tooBig,
      };
  }
  return undefined;
}

describe("DataReader and stuffedSlices", () => {
  it("unstuffs dots and stops at CRLF.CRLF, leaving the next command", () => {
    const wire = Buffer.from("a\r\n..b\r\n.\r\r\n.\r\nQUIT\r\n");
    const out = readAll(wire, 1000)!;
    expect(out.message.toString()).toBe("a\r\n.b\r\n\r\r\n");
    expect(out.rest.toString()).toBe("QUIT\r\n");
  });

  it("does not end the message at a bare LF dot LF (no SMTP smuggling)", () => {
    const wire = Buffer.from("a\n.\nMAIL FROM:<x>\r\n.\r\n");
    expect(readAll(wire, 3)!.message.toString()).toBe("a\n.\nMAIL FROM:<x>\r\n");
  });

  it("reads an empty message", () => {
    expect(readAll(Buffer.from(".\r\n"), 10)!.message.length).toBe(0);
  });

  it("counts bytes past the limit but keeps none of them", () => {
    const out = readAll(Buffer.from("x".repeat(100) + "\r\n.\r\n"), 7, 50)!;
    expect(out.tooBig).toBe(true);
  });

  it("stuffs exactly the lines that start with a dot, dot-heavy text included", () => {
    // The reference: one three-byte search per stuffed line, as RFC 5321 4.5.2 reads.
    const reference = (message: Buffer): Buffer => {
      const text = message.toString("latin1");
      const stuffed = (text.startsWith(".") ? "." : "") + text.replace(/\r\n\./g, "\r\n..");
      return Buffer.from(stuffed + (text === "" || text.endsWith("\r\n") ? ".\r\n" : "\r\n.\r\n"), "latin1");
    };
    const piece = fc.oneof(
      fc.constantFrom(".", "\r\n.", "\r\n", "\r", "\n", "x", "..", "a.b."),
      fc.string({ maxLength: 5 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 400 }), (pieces) => {
        const message = Buffer.from(pieces.join(""), "latin1");
        expect(Buffer.concat(stuffedSlices(message)).equals(reference(message))).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it("round-trips any message through stuffing and unstuffing, however the wire is split", () => {
    const lines = fc.array(
      fc.oneof(fc.constantFrom(".", "..", ".\r", "", "\r", "x.y", "-- b"), fc.string()),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(lines, fc.integer({ min: 1, max: 17 }), (ls, chunk) => {
        const message = Buffer.from(ls.map((l) => `${l}\r\n`).join(""));
        const wire = Buffer.concat([...stuffedSlices(message), Buffer.from("NOOP\r\n")]);
        const out = readAll(wire, chunk);
        expect(out).toBeDefined();
        expect(out!.message.equals(message)).toBe(true);
        expect(out!.rest.toString()).toBe("NOOP\r\n");
      }),
    );
  });
});

/**
 * What any DATA section means (RFC 5321 4.5.2), read line by line: lines end with CRLF only; a line that is "."
 * ends the data, a leading "." of any other line is dropped. The message and the bytes the section took, or
 * undefined while the end marker has not come.
 */
function unstuffLineByLine(wire: Buffer): { message: Buffer; consumed: number } | undefined {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    if (wire[pos] === 0x2e) {
      if (wire[pos + 1] === 0x0d && wire[pos + 2] === 0x0a)
        return { message: Buffer.concat(out), consumed: pos + 3 };
      pos++;
    }
    const crlf = wire.indexOf("\r\n", pos);
    if (crlf < 0) return undefined;
    out.push(wire.subarray(pos, crlf + 2));
    pos = crlf + 2;
  }
}

/** Feeds `wire` to a DataReader `chunkSize` bytes at a time: the message and the bytes its end consumed. */
function readInChunks(wire: Buffer, chunkSize: number): { message: Buffer; consumed: number } | undefined {
  const r = new DataReader(1 << 30);
  for (let i = 0; i < wire.length; i += chunkSize) {
    const res = r.feed(wire.subarray(i, i + chunkSize));
    if (res.done) return { message: r.take(), consumed: i + res.consumed };
  }
  return undefined;
}

describe("DataReader on any bytes", () => {
  it("reads what a line-by-line reading reads, however the bytes are split", () => {
    // Few kinds of bytes, so that dots, line starts and line ends meet in every way; some chunks are long, and
    // full of dots that do not start a line (the reader then changes how it searches).
    const bytes = fc
      .array(fc.constantFrom(".", ".", "\r", "\n", "\r\n", "\r\n.", "a", "....a", "\r\n.\r\n"), {
        maxLength: 80,
      })
      .map((a) => Buffer.from(a.join("")));
    fc.assert(
      fc.property(bytes, fc.integer({ min: 1, max: 200 }), (wire, chunkSize) => {
        const expected = unstuffLineByLine(wire);
        expect(readInChunks(wire, chunkSize)).toEqual(expected);
      }),
      { numRuns: 20_000 },
    );
  });
});

describe("DataReader on text full of dots", () => {
  it("reads what a line-by-line reading reads when dots inside lines make it change how it searches", () => {
    // Long chunks of lines with many dots each (more than the reader tolerates before it searches differently),
    // with lines starting with a dot among them.
    const line = fc.oneof(
      fc.array(fc.constantFrom(".", "a.b", "..", "x", ". ."), { maxLength: 40 }).map((a) => a.join("")),
      fc.constantFrom(".", "..", ".x.", ""),
    );
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 60 }),
        fc.integer({ min: 1, max: 4096 }),
        (lines, chunkSize) => {
          const message = Buffer.from(lines.map((l) => `${l}\r\n`).join(""));
          const wire = Buffer.concat([...stuffedSlices(message), Buffer.from("NOOP\r\n")]);
          const expected = unstuffLineByLine(wire);
          expect(expected?.message.equals(message)).toBe(true);
          expect(readInChunks(wire, chunkSize)).toEqual(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("parsePathArgument", () => {
  it("reads the address and upper-cases parameter keywords", () => {
    const p = parsePathArgument("FROM:<a@b.c> BODY=8BITMIME SMTPUTF8", "FROM")!;
    expect(p.address).toBe("a@b.c");
    expect([...p.params]).toEqual([
      ["BODY", "8BITMIME"],
      ["SMTPUTF8", ""],
    ]);
  });

  it("accepts the null path, a space after the colon, a source route and a quoted local part with >", () => {
    expect(parsePathArgument("FROM:<>", "FROM")!.address).toBe("");
    expect(parsePathArgument("from: <a@b>", "FROM")!.address).toBe("a@b");
    expect(parsePathArgument("TO:<@relay.example:a@b>", "TO")!.address).toBe("a@b");
    expect(parsePathArgument('TO:<"x>y"@b> NOTIFY=NEVER', "TO")!.address).toBe('"x>y"@b');
  });

  it("refuses broken syntax", () => {
    expect(parsePathArgument("FROM <a@b>", "FROM")).toBeUndefined();
    expect(parsePathArgument("TO:<a@b", "TO")).toBeUndefined();
    expect(parsePathArgument("TO:<a@b>junk", "TO")).toBeUndefined();
  });

  it("splits the verb case-insensitively", () => {
    expect(parseCommand("mail FROM:<a@b>")).toEqual({ verb: "MAIL", arg: "FROM:<a@b>" });
    expect(parseCommand("\u0000\u00ff")).toEqual({ verb: "", arg: "\u0000\u00ff" });
  });
});

describe("replies", () => {
  it("formats multi-line replies and reads them back", () => {
    const wire = formatReply(reply(250, "filtermail", "PIPELINING", "SIZE 10"));
    expect(wire).toBe("250-filtermail\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
    expect(new ReplyReader().push(Buffer.from(wire))).toEqual([
      { code: 250, lines: ["filtermail", "PIPELINING", "SIZE 10"] },
    ]);
  });

  it("reads replies however the bytes are split, and refuses what is not a reply", () => {
    const wire = Buffer.from("250-a\r\n250 Grüße\r\n354\r\n221 bye\n");
    for (let cut = 1; cut < wire.length; cut++) {
      const r = new ReplyReader();
      const got = [...r.push(wire.subarray(0, cut)), ...r.push(wire.subarray(cut))];
      expect(got).toEqual([
        { code: 250, lines: ["a", "Grüße"] },
        { code: 354, lines: [""] },
        { code: 221, lines: ["bye"] },
      ]);
    }
    expect(() => new ReplyReader().push(Buffer.from("250x\r\n"))).toThrow(/not an SMTP reply/);
    expect(() => new ReplyReader().push(Buffer.from("650 no\r\n"))).toThrow(/not an SMTP reply/);
    expect(() => new ReplyReader().push(Buffer.from("250-a\r\n251 b\r\n"))).toThrow(/code changed/);
    expect(() => new ReplyReader().push(Buffer.alloc(5000, 0x32))).toThrow(/too long/);
  });

  it("keeps reply text on one line whatever a header contained", () => {
    expect(formatReply(reply(500, "Invalid FROM header: a\r\nRCPT TO:<x>"))).toBe(
      "500 Invalid FROM header: a??RCPT TO:<x>\r\n",
    );
    expect(formatReply(reply(500, "x".repeat(100_000))).length).toBeLessThan(512);
  });
});
