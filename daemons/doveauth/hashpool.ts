// Password hashing off the event loop. A SHA512-CRYPT costs ~10 ms of CPU; done on the main thread it would stall
// every other dict lookup of the process, so account creations go to a small pool of worker threads. The workers
// run the bundled program itself (main.ts starts the worker loop when it sees HASH_WORKER_ROLE), start on the
// first creation and exit after 15 quiet seconds, so an idle relay pays no memory for them.
import { availableParallelism } from "node:os";
import { parentPort, Worker } from "node:worker_threads";
import { newSalt, sha512Crypt, wasmSha512, type Sha512 } from "./crypt";

/** workerData.role that makes the bundled program run as a hash worker. */
export const HASH_WORKER_ROLE = "chatmail-sha512crypt";
/** A worker with nothing to do for this long exits. */
export const WORKER_IDLE_MS = 15_000;

export interface PasswordHasher {
  /** A `$6$` SHA512-CRYPT string with a fresh random salt. */
  hash(password: string): Promise<string>;
  close(): Promise<void>;
}

/** Hashes on the calling thread (tests, and builds run from TypeScript where no bundle exists for workers). */
export function inlineHasher(): PasswordHasher {
  let sha: Sha512 | undefined;
  return {
    async hash(password) {
      sha ??= wasmSha512();
      return sha512Crypt(sha, password, newSalt());
    },
    async close() {},
  };
}

interface Job {
  id: number;
  password: string;
  resolve(hash: string): void;
  reject(err: Error): void;
}

interface PoolWorker {
  worker: Worker;
  job: Job | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

/** A pool of up to `size` worker threads running `script` with the hash-worker role. */
export function workerHasher(script: string, size = Math.min(2, availableParallelism())): PasswordHasher {
  const workers = new Set<PoolWorker>();
  const waiting: Job[] = [];
  let nextId = 1;
  let closed = false;

  const retire = (pw: PoolWorker): void => {
    workers.delete(pw);
    void pw.worker.terminate();
  };

  const assign = (pw: PoolWorker, job: Job): void => {
    if (pw.idleTimer) clearTimeout(pw.idleTimer);
    pw.idleTimer = undefined;
    pw.job = job;
    pw.worker.postMessage({ id: job.id, password: job.password });
  };

  const spawn = (): PoolWorker => {
    const pw: PoolWorker = {
      // Hashing allocates only small short-lived buffers; small heaps keep each worker's footprint down.
      worker: new Worker(script, {
        workerData: { role: HASH_WORKER_ROLE },
        resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
      }),
      job: undefined,
      idleTimer: undefined,
    };
    pw.worker.unref();
    pw.worker.on("message", (msg: { id: number; hash?: string; error?: string }) => {
      const job = pw.job;
      pw.job = undefined;
      if (job && job.id === msg.id) {
        if (msg.hash) job.resolve(msg.hash);
        else job.reject(new Error(msg.error ?? "hash worker failed"));
      }
      const next = waiting.shift();
      if (next) assign(pw, next);
      else {
        pw.idleTimer = setTimeout(() => retire(pw), WORKER_IDLE_MS);
        pw.idleTimer.unref();
      }
    });
    const fail = (err: Error): void => {
      workers.delete(pw);
      pw.job?.reject(err);
      pw.job = undefined;
      // Work waiting for this worker goes to a replacement.
      const next = waiting.shift();
      if (next && !closed) dispatch(next);
    };
    pw.worker.on("error", fail);
    pw.worker.on("exit", (code) => {
      if (pw.job) fail(new Error(`hash worker exited with code ${code}`));
      workers.delete(pw);
    });
    workers.add(pw);
    return pw;
  };

  const dispatch = (job: Job): void => {
    const idle = [...workers].find((w) => w.job === undefined);
    if (idle) assign(idle, job);
    else if (workers.size < size) assign(spawn(), job);
    else waiting.push(job);
  };

  return {
    hash(password) {
      if (closed) return Promise.reject(new Error("hasher closed"));
      return new Promise((resolve, reject) => dispatch({ id: nextId++, password, resolve, reject }));
    },
    async close() {
      closed = true;
      for (const job of waiting.splice(0)) job.reject(new Error("hasher closed"));
      await Promise.all([...workers].map((pw) => pw.worker.terminate()));
      workers.clear();
    },
  };
}

/** The worker side: answers {id, password} messages with {id, hash}. */
export function runHashWorker(): void {
  const port = parentPort;
  if (!port) throw new Error("runHashWorker must run in a worker thread");
  const sha = wasmSha512();
  port.on("message", (msg: { id: number; password: string }) => {
    try {
      port.postMessage({ id: msg.id, hash: sha512Crypt(sha, msg.password, newSalt()) });
    } catch (err) {
      port.postMessage({ id: msg.id, error: (err as Error).message });
    }
  });
}
