// Hashing for account creation with a bounded queue. The hashes run in libuv's thread pool (pbkdf2.ts), so a
// burst of first logins never blocks lookups of existing accounts on the main thread; the bound keeps such a
// burst from piling up work and memory without end: beyond it, creation answers "try later".
import { availableParallelism } from "node:os";
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

/**
 * Hashes running at once: one core stays free for the main thread. libuv would run 4 at a time on its thread
 * pool; on a 2-core server that starved the lookups of existing accounts (bench: lookup p99 17 ms during a burst
 * of creations, 3.6 ms with one hash at a time) without creating accounts any faster.
 */
export const HASH_CONCURRENCY = Math.max(1, availableParallelism() - 1);

export function boundedHasher(
  maxPending = MAX_PENDING_HASHES,
  hash: (password: string) => Promise<string> = pbkdf2Hash,
  concurrency = HASH_CONCURRENCY,
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
