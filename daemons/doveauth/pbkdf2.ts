// The password hash of new accounts: Dovecot's {PBKDF2} scheme, `{PBKDF2}$1$<salt>$<rounds>$<hex>`, the hex being
// 20 bytes of PBKDF2-HMAC-SHA1 over the password with the salt string's bytes as salt (Dovecot 2.3 and 2.4,
// src/auth/password-scheme-pbkdf2.c; checked with `doveadm pw -t` in tests/daemons/dovecot.test.ts). Dovecot
// verifies it itself, as it does the {SHA512-CRYPT} hashes of accounts that existing relays created; doveauth
// only hands back what the file holds, so both keep working side by side.
//
// Why PBKDF2 rather than SHA512-CRYPT: memory independent of the password's length, and far less work per hash
// at the same round count; 5000 rounds, the count SHA512-CRYPT uses by default, so a stolen hash costs a guesser
// about as many hash operations as on existing relays (SHA-1 is cheaper than SHA-512 per operation on GPUs).
// What protects the accounts is mostly the passwords themselves: Delta Chat uses the 12 random characters of 94
// that /new hands out (~78 bits), and passwords chosen at first login need passwordMinLength characters.
//
// The hashing itself runs in pbkdf2lanes.ts, our WebAssembly PBKDF2 on the main thread, four passwords at a time:
// node:crypto's pbkdf2 (OpenSSL 3) cost ~1.2-1.6 ms of CPU per hash here, the lanes ~0.4 ms per hash in a burst
// of first logins and ~1.0-1.3 ms for a lone one (`npm run bench -- pbkdf2`, same runs).
import { pbkdf2, randomBytes } from "node:crypto";
import { Pbkdf2Lanes } from "./pbkdf2lanes";
import { createSha1Lanes } from "./sha1wasm";

export const PBKDF2_PREFIX = "{PBKDF2}";
export const PBKDF2_ROUNDS = 5000;
/** Dovecot's salt length and characters for this scheme; `$` must never appear, it separates the fields. */
export const SALT_LENGTH = 16;
const SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A fresh salt from the CSPRNG (64 symbols, so `& 0x3f` is unbiased). */
export function newSalt(): string {
  let salt = "";
  for (const b of randomBytes(SALT_LENGTH)) salt += SALT_ALPHABET[b & 0x3f];
  return salt;
}

/** SHA-1's output size, the length Dovecot derives and compares. */
const KEY_BYTES = 20;

/** The process's one set of lanes: hashes that wait together share them. */
const lanes = new Pbkdf2Lanes();
/** Decided at the first hash: whether this node and CPU run the lanes' module (WebAssembly SIMD). */
let lanesWork: boolean | undefined;

/**
 * node:crypto's PBKDF2 in libuv's thread pool: the same key, for a runtime without WebAssembly SIMD (V8 needs
 * SSE4.1 on x86-64), where the lanes' module does not compile.
 */
export function opensslPbkdf2Key(password: string, salt: string, rounds: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    pbkdf2(password, salt, rounds, KEY_BYTES, "sha1", (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function lanesSupported(): boolean {
  try {
    createSha1Lanes();
    return true;
  } catch {
    return false;
  }
}

/** The stored form of `password` (taken as UTF-8, as node:crypto would). */
export async function pbkdf2Hash(
  password: string,
  salt = newSalt(),
  rounds = PBKDF2_ROUNDS,
): Promise<string> {
  lanesWork ??= lanesSupported();
  const key = lanesWork
    ? await lanes.derive(password, salt, rounds)
    : await opensslPbkdf2Key(password, salt, rounds);
  return `${PBKDF2_PREFIX}$1$${salt}$${rounds}$${key.toString("hex")}`;
}
