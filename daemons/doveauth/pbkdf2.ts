// The password hash of new accounts: Dovecot's {PBKDF2} scheme, `{PBKDF2}$1$<salt>$<rounds>$<hex>`, the hex being
// 20 bytes of PBKDF2-HMAC-SHA1 over the password with the salt string's bytes as salt (Dovecot 2.3 and 2.4,
// src/auth/password-scheme-pbkdf2.c; checked with `doveadm pw -t` in tests/daemons/dovecot.test.ts). Dovecot
// verifies it itself, as it does the {SHA512-CRYPT} hashes of accounts that existing relays created; doveauth
// only hands back what the file holds, so both keep working side by side.
//
// Why PBKDF2 rather than SHA512-CRYPT: node:crypto computes it natively in libuv's thread pool, off the main
// thread, with memory independent of the password's length, and no crypt(3) of our own is needed. The cost on
// this machine: ~1.0 ms of CPU per hash at 5000 rounds, where glibc's SHA512-CRYPT at its default 5000 rounds
// costs ~2.0 ms and our former WebAssembly SHA512-CRYPT 4.4 ms per creation. 5000 rounds, the count SHA512-CRYPT
// uses by default, so a stolen hash costs a guesser about as many hash operations as on existing relays (SHA-1
// is cheaper than SHA-512 per operation on GPUs). What protects the accounts is mostly the passwords themselves:
// Delta Chat uses the 12 random characters of 94 that /new hands out (~78 bits), and passwords chosen at first
// login need passwordMinLength characters.
import { pbkdf2, randomBytes } from "node:crypto";

export const PBKDF2_PREFIX = "{PBKDF2}";
export const PBKDF2_ROUNDS = 5000;
/** Dovecot's salt length and characters for this scheme; `$` must never appear, it separates the fields. */
export const SALT_LENGTH = 16;
const SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** SHA-1's output size, the length Dovecot derives and compares. */
const KEY_BYTES = 20;

/** A fresh salt from the CSPRNG (64 symbols, so `& 0x3f` is unbiased). */
export function newSalt(): string {
  let salt = "";
  for (const b of randomBytes(SALT_LENGTH)) salt += SALT_ALPHABET[b & 0x3f];
  return salt;
}

/** The stored form of `password`, computed in libuv's thread pool. */
export function pbkdf2Hash(password: string, salt = newSalt(), rounds = PBKDF2_ROUNDS): Promise<string> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, rounds, KEY_BYTES, "sha1", (err, key) => {
      if (err) reject(err);
      else resolve(`${PBKDF2_PREFIX}$1$${salt}$${rounds}$${key.toString("hex")}`);
    });
  });
}
