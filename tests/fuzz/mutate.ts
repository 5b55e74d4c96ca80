// Byte-level mutation of valid protocol text: flip, insert, delete, duplicate and cut at random places, and
// splice in the bytes parsers trip over (NUL, TAB, CR, LF, the \001 escape, invalid UTF-8, a lone dot).
import fc from "fast-check";

const NASTY: readonly Buffer[] = [
  Buffer.from([0]),
  Buffer.from("\t"),
  Buffer.from("\r"),
  Buffer.from("\n"),
  Buffer.from("\r\n"),
  Buffer.from([1]),
  Buffer.from([1, 0x78]), // \001 followed by a letter that is no escape
  Buffer.from([0xff, 0xfe]),
  Buffer.from([0xc3]), // a UTF-8 lead byte without its continuation
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xed, 0xa0, 0x80]), // an encoded UTF-16 surrogate
  Buffer.from("."),
  Buffer.from('"'),
  Buffer.from("\\"),
  Buffer.from("/../"),
  Buffer.from("@"),
  Buffer.from("%00"),
];

type Mutation =
  | { op: "flip"; at: number; byte: number }
  | { op: "insert"; at: number; bytes: Buffer }
  | { op: "delete"; at: number; length: number }
  | { op: "duplicate"; at: number; length: number }
  | { op: "cut"; at: number };

const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: position, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("insert" as const), at: position, bytes: fc.constantFrom(...NASTY) }),
  fc.record({
    op: fc.constant("insert" as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }).map((a) => Buffer.from(a)),
  }),
  fc.record({ op: fc.constant("delete" as const), at: position, length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant("duplicate" as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ op: fc.constant("cut" as const), at: position }),
);

function apply(data: Buffer, m: Mutation): Buffer {
  const at = Math.floor(m.at * (data.length + 1));
  switch (m.op) {
    case "flip": {
      if (data.length === 0) return data;
      const copy = Buffer.from(data);
      copy[Math.min(at, data.length - 1)] = m.byte;
      return copy;
    }
    case "insert":
      return Buffer.concat([data.subarray(0, at), m.bytes, data.subarray(at)]);
    case "delete":
      return Buffer.concat([data.subarray(0, at), data.subarray(at + m.length)]);
    case "duplicate":
      return Buffer.concat([data.subarray(0, at + m.length), data.subarray(at)]);
    case "cut":
      return data.subarray(0, at);
  }
}

/** `valid` with one to four mutations applied. */
export function mutated(valid: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc
    .tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([data, ms]) => ms.reduce(apply, data));
}

/** Random bytes, sometimes printable text. */
export const garbage: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.string({ maxLength: 80 }).map((s) => Buffer.from(s)),
  fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => Buffer.from(s)),
);

/** One byte repeated to a length around a limit: the longest line a daemon takes, and one byte more. */
export function longRun(limits: readonly number[], maxExtra = 70_000): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.oneof(
        fc.constantFrom(...limits.flatMap((l) => [l - 1, l, l + 1])),
        fc.integer({ min: 1000, max: maxExtra }),
      ),
      fc.constantFrom(0x61, 0x00, 0xff, 0x2e, 0x09),
    )
    .map(([length, byte]) => Buffer.alloc(length, byte));
}
