import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { newSalt, nodeSha512, sha512Crypt, wasmSha512 } from "../../daemons/doveauth/crypt";
import { inlineHasher } from "../../daemons/doveauth/hashpool";

// Vectors from Drepper's SHA-crypt specification (also glibc's crypt tests).
const SPEC_VECTORS: Array<[string, string, string]> = [
  [
    "$6$saltstring",
    "Hello world!",
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
  ],
  [
    "$6$rounds=10000$saltstringsaltstring",
    "Hello world!",
    "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
  ],
  [
    "$6$rounds=5000$toolongsaltstring",
    "This is just a test",
    "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
  ],
  [
    "$6$rounds=1400$anotherlongsaltstring",
    "a very much longer text to encrypt.  This one even stretches over morethan one line.",
    "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
  ],
  [
    "$6$rounds=10$roundstoolow",
    "the minimum number is still observed",
    "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
  ],
];

describe("sha512Crypt", () => {
  it.each(SPEC_VECTORS)(
    "reproduces the specification's vector for salt %s",
    async (salt, password, expected) => {
      expect(sha512Crypt(wasmSha512(), password, salt)).toBe(expected);
      expect(sha512Crypt(nodeSha512, password, salt)).toBe(expected);
    },
  );

  it.each([
    ["short", "abcdefghi"],
    ["punctuation and quotes", `a"b'c\\d/e f%g`],
    ["unicode", "pässwörd-日本"],
    ["longer than one SHA-512 block", "x".repeat(150)],
    ["invite-token prefixed", "s3cr3tt0k3n!Q2w#E4r%T6y"],
  ])("agrees with openssl passwd -6 for a %s password", async (_name, password) => {
    const salt = newSalt();
    const expected = execFileSync("openssl", ["passwd", "-6", "-salt", salt.slice(3), "-stdin"], {
      input: password,
    })
      .toString()
      .trim();
    expect(sha512Crypt(wasmSha512(), password, salt)).toBe(expected);
  });

  it.each([0, 1, 64, 111, 112, 127, 128, 129, 239, 240, 256, 1000])(
    "hashes %i bytes like node:crypto",
    (n) => {
      const data = randomBytes(n);
      const sha = wasmSha512();
      expect(Buffer.from(sha(data)).equals(nodeSha512(data))).toBe(true);
      expect(Buffer.from(sha(data)).equals(nodeSha512(data))).toBe(true); // the instance is reusable
      sha.inPlace.message.set(data);
      sha.inPlace.digest(n);
      expect(Buffer.from(sha.inPlace.out).equals(nodeSha512(data))).toBe(true);
    },
  );

  it("falls back from the in-place path for passwords too long for it, with the same result", () => {
    const password = "p".repeat(20_000);
    const salt = "$6$rounds=1000$abcdefghijklmnop";
    expect(sha512Crypt(wasmSha512(), password, salt)).toBe(sha512Crypt(nodeSha512, password, salt));
  });

  it("makes 16-character salts from the crypt alphabet, different every time", () => {
    const a = newSalt();
    expect(a).toMatch(/^\$6\$[./0-9A-Za-z]{16}$/);
    expect(newSalt()).not.toBe(a);
  });

  it("hashes with a fresh salt on every call, in the layout existing relays store", async () => {
    const hasher = inlineHasher();
    const [a, b] = [await hasher.hash("q9mr3faue"), await hasher.hash("q9mr3faue")];
    expect(a).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(a).not.toBe(b);
    expect(sha512Crypt(nodeSha512, "q9mr3faue", a)).toBe(a);
  });
});
