import { pbkdf2Sync, randomBytes, randomInt } from "node:crypto";
import { describe, expect, it } from "vitest";
import { boundedHasher } from "../../daemons/doveauth/hasher";
import { Pbkdf2Lanes, SLICE_ITERATIONS } from "../../daemons/doveauth/pbkdf2lanes";

const expected = (password: string | Buffer, salt: string | Buffer, rounds: number) =>
  pbkdf2Sync(password, salt, rounds, 20, "sha1").toString("hex");

const CHARS = ["a", "Z", "7", " ", "$", '"', "\\", "é", "ü", "€", "中", "😀", "\u0000", "\ud800"];
/** A random string of `length` characters drawn from ASCII, 2-, 3- and 4-byte UTF-8 and a lone surrogate. */
function randomPassword(length: number): string {
  let s = "";
  while (s.length < length) s += CHARS[randomInt(CHARS.length)];
  return s.slice(0, length);
}

const randomSalt = () => randomBytes(12).toString("base64url").slice(0, randomInt(1, 17));

/** Passwords around HMAC's 64-byte block: shorter keys are padded, longer ones hashed first. */
const EDGE_PASSWORDS = [
  "",
  "x",
  "q9mr3faue1xy",
  "a".repeat(63),
  "a".repeat(64),
  "a".repeat(65),
  "é".repeat(32), // 64 bytes in 32 characters
  "€".repeat(22), // 66 bytes
  "y".repeat(1000),
  randomPassword(1200),
];

describe("Pbkdf2Lanes", () => {
  it("derives what node:crypto derives, for edge-case passwords and rounds 1, 2 and 5000", async () => {
    const lanes = new Pbkdf2Lanes();
    for (const rounds of [1, 2, 5000])
      for (const password of EDGE_PASSWORDS) {
        const salt = randomSalt();
        expect((await lanes.derive(password, salt, rounds)).toString("hex")).toBe(
          expected(password, salt, rounds),
        );
      }
  });

  it("derives what node:crypto derives for random passwords and salts, in batches of 1 to 4 lanes", async () => {
    const lanes = new Pbkdf2Lanes();
    for (const batch of [1, 2, 3, 4, 1, 3, 2, 4])
      for (const rounds of [1, 2, 5000]) {
        const inputs = Array.from({ length: batch }, () => ({
          password: randomPassword(randomInt(0, 150)),
          salt: randomSalt(),
        }));
        const keys = await Promise.all(inputs.map((i) => lanes.derive(i.password, i.salt, rounds)));
        expect(keys.map((k) => k.toString("hex"))).toEqual(
          inputs.map((i) => expected(i.password, i.salt, rounds)),
        );
      }
  });

  it("takes Buffers as they are, and the 16-character salt of the stored form", async () => {
    const lanes = new Pbkdf2Lanes();
    const password = randomBytes(70);
    const salt = randomBytes(16);
    expect((await lanes.derive(password, salt, 3)).toString("hex")).toBe(expected(password, salt, 3));
    expect((await lanes.derive("secret", "fKGxbNE/4Rk56YNB", 5000)).toString("hex")).toBe(
      "e8326d6c31aa7cd1cb278218331e8957f132f587",
    );
  });

  it("keeps each caller's result when many hashes with different rounds share and refill the lanes", async () => {
    const lanes = new Pbkdf2Lanes();
    const tiny = new Pbkdf2Lanes(7);
    // Different round counts make lanes finish at different slices, so waiting passwords join mid-way and a
    // password left alone moves to the plain-code lane.
    const roundsChoice = [1, 2, SLICE_ITERATIONS, SLICE_ITERATIONS + 1, 1234, 5000];
    const inputs = Array.from({ length: 13 }, (_, i) => ({
      password: randomPassword(randomInt(1, 80)),
      salt: randomSalt(),
      rounds: roundsChoice[i % roundsChoice.length],
    }));
    for (const l of [lanes, tiny]) {
      const keys = await Promise.all(inputs.map((i) => l.derive(i.password, i.salt, i.rounds)));
      expect(keys.map((k) => k.toString("hex"))).toEqual(
        inputs.map((i) => expected(i.password, i.salt, i.rounds)),
      );
    }
    // Lane 0 finishes first; lane 1 then runs alone.
    const [short, long] = await Promise.all([
      lanes.derive("short", "s1", 700),
      lanes.derive("long", "s2", 2100),
    ]);
    expect([short.toString("hex"), long.toString("hex")]).toEqual([
      expected("short", "s1", 700),
      expected("long", "s2", 2100),
    ]);
  });

  it("refuses a round count below 1 or not whole", async () => {
    const lanes = new Pbkdf2Lanes();
    await expect(lanes.derive("pw", "salt", 0)).rejects.toThrow(RangeError);
    await expect(lanes.derive("pw", "salt", 1.5)).rejects.toThrow(RangeError);
    expect((await lanes.derive("pw", "salt", 1)).toString("hex")).toBe(expected("pw", "salt", 1));
  });
});

describe("boundedHasher with the default hash", () => {
  it("hands each of many concurrent callers the hash of its own password", async () => {
    const hasher = boundedHasher();
    const passwords = Array.from({ length: 11 }, (_, i) => `${randomPassword(10)}-${i}`);
    const stored = await Promise.all(passwords.map((p) => hasher.hash(p)));
    stored.forEach((s, i) => {
      const m = /^\{PBKDF2\}\$1\$([./0-9A-Za-z]{16})\$5000\$([0-9a-f]{40})$/.exec(s);
      expect(m).not.toBeNull();
      expect(m![2]).toBe(expected(passwords[i], m![1], 5000));
    });
  });
});
