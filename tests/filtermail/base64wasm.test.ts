// The WebAssembly check of base64 lines (daemons/filtermail/base64wasm.ts) against a plain reference, and the
// verdict that uses it (checkLaidOutBase64Packets) against decoding everything (the streaming decoder and the
// packet walker), on packet sequences that really parse, laid out as armor and then edited.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nibbleTables, validBase64Lines } from "../../daemons/filtermail/base64wasm";
import {
  checkBase64Packets,
  checkLaidOutBase64Packets,
  decodeStrictBase64Streaming,
  PacketWalker,
} from "../../daemons/filtermail/openpgp";
import { ARMOR_EDITS, editedArmor, packet, partialPacket } from "./pgp";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The lines validBase64Lines should count, byte by byte. */
function referenceLines(text: Buffer, width: number, crlf: boolean, maxLines: number): number {
  const stride = width + (crlf ? 2 : 1);
  let n = 0;
  for (; n < maxLines && (n + 1) * stride <= text.length; n++) {
    const base = n * stride;
    for (let i = 0; i < width; i++) if (!ALPHABET.includes(String.fromCharCode(text[base + i]))) return n;
    const end = base + width;
    if (crlf ? text[end] !== 0x0d || text[end + 1] !== 0x0a : text[end] !== 0x0a) return n;
  }
  return n;
}

describe("nibbleTables", () => {
  it("marks exactly the bytes outside the alphabet", () => {
    const { low, high } = nibbleTables(ALPHABET);
    for (let b = 0; b < 256; b++)
      expect((low[b & 15] & high[b >> 4]) !== 0, `byte ${b}`).toBe(
        !ALPHABET.includes(String.fromCharCode(b)),
      );
  });
});

describe("validBase64Lines", () => {
  it("takes every byte value at every position of a line as the alphabet says", () => {
    for (let b = 0; b < 256; b++)
      for (let pos = 0; pos < 21; pos++) {
        const text = Buffer.from(`${"A".repeat(20)}\r\n`);
        text[pos] = b;
        const valid = pos < 20 ? ALPHABET.includes(String.fromCharCode(b)) : b === 0x0d;
        expect(validBase64Lines(text, 20, true), `byte ${b} at ${pos}`).toBe(valid ? 1 : 0);
      }
  });

  it("counts the same lines as the reference, across windows", () => {
    const line = fc.constantFrom(...ALPHABET.split(""));
    fc.assert(
      fc.property(
        fc.record({
          width: fc.integer({ min: 16, max: 100 }),
          crlf: fc.boolean(),
          lines: fc.integer({ min: 1, max: 1500 }),
          extra: fc.nat({ max: 4 }),
          edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
          maxLines: fc.option(fc.nat({ max: 1600 })),
          fill: line,
        }),
        ({ width, crlf, lines, extra, edits, maxLines, fill }) => {
          const stride = width + (crlf ? 2 : 1);
          const text = Buffer.alloc(lines * stride + extra, fill);
          for (let l = 0; l < lines; l++) {
            const end = l * stride + width;
            if (crlf) text.write("\r\n", end, "latin1");
            else text[end] = 0x0a;
          }
          for (const [at, b] of edits) text[at % text.length] = b;
          // A text cut after `maxLines` lines (or not cut): only lines whose break is inside it count.
          const cut = maxLines === null ? text : text.subarray(0, maxLines * stride);
          expect(validBase64Lines(cut, width, crlf)).toBe(
            referenceLines(text, width, crlf, maxLines ?? lines + 10),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("checkLaidOutBase64Packets", () => {
  /** The verdict from decoding everything: the reference. */
  const decoded = (text: Buffer): boolean => {
    const walker = new PacketWalker();
    return decodeStrictBase64Streaming(text, (c) => walker.push(c)) && walker.end();
  };

  // Packet sequences that parse, or nearly: session keys, then an encrypted-data packet with a plain or partial
  // length, sometimes a packet too many or too few bytes.
  const sequence = fc
    .record({
      keys: fc.array(fc.record({ tag: fc.constantFrom(1, 3), size: fc.nat({ max: 300 }) }), { maxLength: 3 }),
      size: fc.nat({ max: 70_000 }),
      power: fc.option(fc.integer({ min: 0, max: 12 })),
      last: fc.constantFrom(18, 18, 18, 11),
      cut: fc.constantFrom(0, 0, 0, -1, 1),
    })
    .map(({ keys, size, power, last, cut }) => {
      const body = Buffer.alloc(size, 0x5a);
      const bytes = Buffer.concat([
        ...keys.map((k) => packet(k.tag, Buffer.alloc(k.size, k.tag))),
        power === null ? packet(last, body) : partialPacket(last, body, power),
      ]);
      return cut < 0
        ? bytes.subarray(0, bytes.length - 1)
        : cut > 0
          ? Buffer.concat([bytes, Buffer.from([0])])
          : bytes;
    });

  // Unedited more often than not, so that most cases are armor the new path decides itself.
  const laidOut = editedArmor(sequence, [16, 20, 64, 76, 64, 76, 6, 18], ["", "", "", ...ARMOR_EDITS]);

  it("gives the verdict of decoding everything, and decides unedited armor itself", () => {
    let decided = 0;
    fc.assert(
      fc.property(laidOut, ({ text, width, lines, edited }) => {
        const expected = decoded(text);
        const verdict = checkLaidOutBase64Packets(text);
        if (verdict !== undefined) {
          expect(verdict).toBe(expected);
          decided++;
        }
        // Armor as OpenPGP writes it (lines of a width >= 16 that is a multiple of 4, more than one line) never
        // falls back to decoding.
        if (!edited && width >= 16 && width % 4 === 0 && lines > 1) expect(verdict).toBeDefined();
        expect(checkBase64Packets(text)).toBe(expected);
      }),
      { numRuns: 4000 },
    );
    expect(decided).toBeGreaterThan(500); // the new path, not only the fallback, was checked
  });

  it("accepts a 2 MB message by its headers and refuses it with one bad character anywhere", () => {
    const bytes = Buffer.concat([
      packet(1, Buffer.alloc(60, 1)),
      partialPacket(18, Buffer.alloc(2_000_000, 3), 13),
    ]);
    const text = Buffer.from(
      `${bytes
        .toString("base64")
        .match(/.{1,76}/g)!
        .join("\r\n")}\r\n`,
    );
    expect(checkLaidOutBase64Packets(text)).toBe(true);
    for (const at of [0, 77, 1_000_000, text.length - 10]) {
      const broken = Buffer.from(text);
      broken[at] = 0x2a;
      expect(checkBase64Packets(broken), `* at ${at}`).toBe(false);
    }
  });
});
