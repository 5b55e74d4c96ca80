// SHA512-CRYPT ("$6$", Ulrich Drepper's SHA-crypt, https://www.akkadia.org/drepper/SHA-crypt.txt), the scheme
// existing relays store in <addr>/password and Dovecot verifies through crypt(3). Node has no crypt(3), so this is
// the published algorithm over a SHA-512 primitive: sha512wasm.ts, because the 5,000 rounds hash tiny messages
// and node:crypto's per-call set-up (createHash) made a password hash several times slower.
import { createHash, randomBytes } from "node:crypto";
import { createWasmSha512, IN_PLACE_MAX_BYTES, type InPlaceSha512, type WasmSha512 } from "./sha512wasm";

/** Alphabet of crypt(3)'s base-64 encoding, also the allowed salt characters. */
export const CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** glibc's default when the salt string carries no `rounds=` field; existing relays use it. */
export const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
export const SALT_LENGTH = 16;

/** SHA-512 of `data`; `inPlace`, when present, is used for the one-block messages of the rounds. */
export type Sha512 = ((data: Uint8Array) => Uint8Array) & { readonly inPlace?: InPlaceSha512 };

/** node:crypto's SHA-512; used by tests as an independent primitive. */
export const nodeSha512: Sha512 = (data) => createHash("sha512").update(data).digest();

/** The WebAssembly SHA-512 (one instance per call; keep one per thread). */
export function wasmSha512(): WasmSha512 {
  return createWasmSha512();
}

/**
 * The full crypt string (`$6$salt$hash`, or `$6$rounds=N$salt$hash` when the spec names rounds) for `password`
 * and a salt spec: `$6$salt`, `$6$rounds=N$salt`, or a complete hash whose salt is reused for verification.
 */
export function sha512Crypt(sha512: Sha512, password: string, saltSpec: string): string {
  if (!saltSpec.startsWith("$6$")) throw new Error("sha512-crypt salt spec must start with $6$");
  let rest = saltSpec.slice(3);
  let rounds = DEFAULT_ROUNDS;
  let roundsGiven = false;
  const roundsMatch = /^rounds=(\d+)\$/.exec(rest);
  if (roundsMatch) {
    rounds = Math.min(MAX_ROUNDS, Math.max(MIN_ROUNDS, Number(roundsMatch[1])));
    roundsGiven = true;
    rest = rest.slice(roundsMatch[0].length);
  }
  const dollar = rest.indexOf("$");
  const saltText = (dollar === -1 ? rest : rest.slice(0, dollar)).slice(0, SALT_LENGTH);
  const P = Buffer.from(password, "utf8");
  const S = Buffer.from(saltText, "utf8");
  let scratch = Buffer.alloc(Math.max(256, 2 * P.length + S.length + 128));
  const digestOf = (...parts: Uint8Array[]): Uint8Array => {
    const len = parts.reduce((n, p) => n + p.length, 0);
    if (scratch.length < len) scratch = Buffer.alloc(len);
    let off = 0;
    for (const p of parts) {
      scratch.set(p, off);
      off += p.length;
    }
    return sha512(scratch.subarray(0, len));
  };

  // Steps 1-12 of the specification: digest A over password, salt and the alternate digest B.
  const B = digestOf(P, S, P);
  const aParts: Uint8Array[] = [P, S];
  let n = P.length;
  for (; n > 64; n -= 64) aParts.push(B);
  aParts.push(B.subarray(0, n));
  for (let bits = P.length; bits > 0; bits >>= 1) aParts.push(bits & 1 ? B : P);
  let C = digestOf(...aParts);
  // Steps 13-20: the byte sequences P' and S' derived from digests DP and DS.
  const DP = digestOf(...new Array<Uint8Array>(P.length).fill(P));
  const pSeq = Buffer.alloc(P.length);
  for (let i = 0; i < P.length; i += 64) pSeq.set(DP.subarray(0, Math.min(64, P.length - i)), i);
  const DS = digestOf(...new Array<Uint8Array>(16 + C[0]).fill(S));
  const sSeq = Buffer.from(DS.subarray(0, S.length));
  // Step 21: the rounds that make the hash slow. Each round's message is assembled in one buffer and hashed with one
  // call; with an in-place engine, that buffer is the engine's own memory.
  const roundLength = 64 + pSeq.length + (sSeq.length + pSeq.length);
  const inPlace = roundLength <= IN_PLACE_MAX_BYTES ? sha512.inPlace : undefined;
  const msg = inPlace ? inPlace.message : new Uint8Array(roundLength);
  const digest = new Uint8Array(64);
  digest.set(C);
  for (let i = 0; i < rounds; i++) {
    let off = 0;
    const first = i & 1 ? pSeq : digest;
    msg.set(first, off);
    off += first.length;
    if (i % 3) {
      msg.set(sSeq, off);
      off += sSeq.length;
    }
    if (i % 7) {
      msg.set(pSeq, off);
      off += pSeq.length;
    }
    const last = i & 1 ? digest : pSeq;
    msg.set(last, off);
    off += last.length;
    if (inPlace) {
      inPlace.digest(off);
      digest.set(inPlace.out);
    } else digest.set(sha512(msg.subarray(0, off)));
  }
  C = digest;
  // Step 22: crypt's base-64 of the final digest, bytes taken in the specification's order.
  let out = "";
  const put = (b2: number, b1: number, b0: number, count: number): void => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < count; i++) {
      out += CRYPT_ALPHABET[w & 0x3f];
      w >>= 6;
    }
  };
  for (let i = 0; i < 21; i++) {
    // (0,21,42), (22,43,1), (44,2,23), (3,24,45), ...: the triple i, i+21, i+42 rotated left by i mod 3.
    const t = [C[i], C[i + 21], C[i + 42]];
    const r = i % 3;
    put(t[r], t[(r + 1) % 3], t[(r + 2) % 3], 4);
  }
  put(0, 0, C[63], 2);
  return `$6$${roundsGiven ? `rounds=${rounds}$` : ""}${saltText}$${out}`;
}

/** A fresh `$6$<16 salt chars>` salt spec from the CSPRNG (64 symbols, so `& 0x3f` is unbiased). */
export function newSalt(): string {
  let salt = "";
  for (const b of randomBytes(SALT_LENGTH)) salt += CRYPT_ALPHABET[b & 0x3f];
  return `$6$${salt}`;
}
