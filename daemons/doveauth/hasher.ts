// Hashing for account creation with a bounded queue. The hashes run in libuv's thread pool (pbkdf2.ts), so a
// burst of first logins never blocks lookups of existing accounts on the main thread; the bound keeps such a
// burst from piling up work and memory without end: beyond it, creation answers "try later".
import { pbkdf2Hash } from "./pbkdf2";

/**
 * Hashes in flight at most. libuv runs 4 at a time (UV_THREADPOOL_SIZE) at ~1 ms each, so a full queue is ~64 ms
 * of work, and each waiting hash holds only its password; a client refused here retries its login. The creation
 * limits (creationlimit.ts) keep bursts below this with the default options.
 */
export const MAX_PENDING_HASHES = 256;

/** Thrown when the queue is full; doveauth answers the lookup with a failure, which Dovecot makes temporary. */
export class HashQueueFullError extends Error {}

export interface PasswordHasher {
  /** The stored form of `password`, with a fresh salt. Rejects with HashQueueFullError when the queue is full. */
  hash(password: string): Promise<string>;
}

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
