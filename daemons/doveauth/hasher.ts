// Hashing for account creation with a bounded queue. The default hash (pbkdf2.ts) runs on the main thread in short
// slices, four passwords at a time (pbkdf2lanes.ts), so a burst of first logins neither blocks lookups of existing
// accounts for long nor takes a second core from them; the bound keeps such a burst from piling up work and
// memory without end: beyond it, creation answers "try later".
import { pbkdf2Hash } from "./pbkdf2";

/**
 * Hashes queued at most. At ~0.4 ms of CPU each in a burst, a full queue is ~100 ms of work, and each waiting
 * hash holds only its password; a client refused here retries its login. The creation limits (creationlimit.ts)
 * keep bursts below this with the default options.
 */
export const MAX_PENDING_HASHES = 256;

/** Thrown when the queue is full; doveauth answers the lookup with a failure, which Dovecot makes temporary. */
export class HashQueueFullError extends Error {}

export interface PasswordHasher {
  /** The stored form of `password`, with a fresh salt. Rejects with HashQueueFullError when the queue is full. */
  hash(password: string): Promise<string>;
}

/**
 * Bounds the hashes waiting at once. The default hash needs no limit on how many run: it queues the passwords
 * itself, runs one slice at a time, and needs them all at once to fill its four lanes.
 */
export function boundedHasher(
  maxPending = MAX_PENDING_HASHES,
  hash: (password: string) => Promise<string> = pbkdf2Hash,
): PasswordHasher {
  let pending = 0;
  return {
    async hash(password) {
      if (pending >= maxPending) throw new HashQueueFullError(`${pending} password hashes already queued`);
      pending++;
      try {
        return await hash(password);
      } finally {
        pending--;
      }
    },
  };
}
