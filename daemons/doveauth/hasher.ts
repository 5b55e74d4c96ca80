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
 * `concurrency` limits the calls of `hash` running at once, for a hash that runs elsewhere in parallel (threads
 * of its own). The default hash needs no limit: it queues the passwords itself and runs one slice at a time, and
 * it needs them all at once to fill its four lanes.
 */
export function boundedHasher(
  maxPending = MAX_PENDING_HASHES,
  hash: (password: string) => Promise<string> = pbkdf2Hash,
  concurrency = Number.POSITIVE_INFINITY,
): PasswordHasher {
  let pending = 0;
  let running = 0;
  const waiting: (() => void)[] = [];
  // A finished hash hands its slot straight to the next waiting one, so `running` never exceeds `concurrency`.
  const acquire = (): Promise<void> => {
    if (running < concurrency) {
      running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return {
    async hash(password) {
      if (pending >= maxPending) throw new HashQueueFullError(`${pending} password hashes already queued`);
      pending++;
      try {
        await acquire();
        try {
          return await hash(password);
        } finally {
          release();
        }
      } finally {
        pending--;
      }
    },
  };
}
