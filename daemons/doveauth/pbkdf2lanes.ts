// PBKDF2-HMAC-SHA1 (20-byte keys) on the main thread, up to four passwords at a time in the lanes of
// sha1wasm.ts. Why: account creation is almost all password hashing, and node:crypto's pbkdf2 (OpenSSL 3) spends
// ~1.2-1.5 ms of CPU per hash at 5000 rounds here, mostly on HMAC context copies. Measured in the same runs
// (`npm run bench -- pbkdf2`, 2-core AMD EPYC, Node 20): four passwords in the v128 lanes ~0.37-0.43 ms each,
// so a burst of first logins costs under a third; a lone password ~1.1 ms in the plain i32 code, where one busy
// v128 lane would cost ~1.3-1.5 ms (SIMD has no rotate instruction, so each rotation takes three).
//
// Why the main thread: no worker (an isolate of its own costs memory), and no native addon. The hashing runs in
// slices of SLICE_ITERATIONS (~0.1 ms for four lanes here), and setImmediate between slices lets the lookups of
// existing accounts through, so they wait at most about one slice for a burst of creations. A password waits for
// a free lane; lanes free up, and waiting passwords join, at the end of a slice.
//
// The HMAC states of a password (SHA-1 of key^ipad and key^opad) are computed once with absorb4(); U1 =
// HMAC(password, salt || 1) comes from node:crypto, so the salt may have any length; the remaining rounds-1
// iterations run in WebAssembly. Memory: the module's one 64 KiB page, and per password its Buffers until done.
import { createHash, createHmac } from "node:crypto";
import { ACC, BLOCK, createSha1Lanes, ISTATE, LANES, OSTATE, STATE, U, type Sha1Lanes } from "./sha1wasm";

/**
 * Iterations per call into WebAssembly before the event loop gets its turn: ~0.1 ms with four lanes here (slower
 * CPUs, and V8's baseline code of the first calls, take longer). Slices of 50-100 cost ~10% more CPU per hash.
 */
export const SLICE_ITERATIONS = 250;

const SHA1_IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
const BLOCK_BYTES = 64;

interface Job {
  password: Buffer;
  salt: Buffer;
  rounds: number;
  resolve(key: Buffer): void;
  reject(err: unknown): void;
}

interface Lane {
  job: Job;
  remaining: number;
}

/** Writes the 5 big-endian words of a 20-byte digest into lane `lane` of the words at byte offset `off`. */
function setLane(words: Uint32Array, off: number, lane: number, digest: Buffer): void {
  for (let i = 0; i < 5; i++) words[off / 4 + 4 * i + lane] = digest.readUInt32BE(4 * i);
}

function getLane(words: Uint32Array, off: number, lane: number): Buffer {
  const out = Buffer.alloc(20);
  for (let i = 0; i < 5; i++) out.writeUInt32BE(words[off / 4 + 4 * i + lane], 4 * i);
  return out;
}

/**
 * A queue of PBKDF2 computations run in slices of SLICE_ITERATIONS, each slice advancing every busy lane; between
 * slices setImmediate lets I/O through. A password waits for a free lane, which a finished one frees at the end
 * of a slice; finished keys go to their callers one per turn.
 */
export class Pbkdf2Lanes {
  private readonly lanes: (Lane | undefined)[] = new Array(LANES).fill(undefined);
  private readonly waiting: Job[] = [];
  /** Keys computed, handed to their callers one per turn. */
  private readonly finished: Array<{ job: Job; key: Buffer }> = [];
  private scheduled = false;
  /**
   * Built at the first hash, not when the daemon starts: assembling and compiling take ~20 ms once, and the
   * process then holds ~7 MiB more (~5 MiB of them V8's WebAssembly compilers, pages of the node binary).
   */
  private wasm: Sha1Lanes | undefined;

  constructor(private readonly sliceIterations = SLICE_ITERATIONS) {}

  /** The 20-byte PBKDF2-HMAC-SHA1 key of `password` (UTF-8, as node:crypto takes a string) and `salt`. */
  derive(password: string | Buffer, salt: string | Buffer, rounds: number): Promise<Buffer> {
    if (!Number.isInteger(rounds) || rounds < 1)
      return Promise.reject(new RangeError(`bad rounds ${rounds}`));
    return new Promise((resolve, reject) => {
      this.waiting.push({
        password: typeof password === "string" ? Buffer.from(password, "utf8") : password,
        salt: typeof salt === "string" ? Buffer.from(salt, "utf8") : salt,
        rounds,
        resolve,
        reject,
      });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      // One finished password per turn: its caller's continuation (the new account's files, written
      // synchronously) runs in a turn of its own, so four lanes that finish together do not hold up lookups for
      // four creations at once.
      const done = this.finished.shift();
      if (done) done.job.resolve(done.key);
      if (this.busy()) {
        try {
          this.slice();
        } catch (err) {
          // Not expected (the code has no failure path); fail every caller rather than hang them.
          for (const lane of this.lanes.splice(0, LANES, ...new Array(LANES).fill(undefined)))
            lane?.job.reject(err);
          for (const job of this.waiting.splice(0)) job.reject(err);
        }
      }
      if (this.finished.length > 0 || this.busy()) this.schedule();
    });
  }

  private busy(): boolean {
    return this.waiting.length > 0 || this.lanes.some((lane) => lane !== undefined);
  }

  private slice(): void {
    const wasm = (this.wasm ??= createSha1Lanes());
    this.fillLanes(wasm);
    let n = this.sliceIterations;
    for (const lane of this.lanes) if (lane) n = Math.min(n, lane.remaining);
    const busy = this.lanes.flatMap((lane, i) => (lane ? [i] : []));
    if (busy.length === 1) {
      // A lone password runs in plain 32-bit code, faster than one v128 lane.
      if (busy[0] !== 0) this.moveLane(wasm, busy[0], 0);
      if (n > 0) wasm.iterate1(n);
    } else if (n > 0) wasm.iterate4(n);
    for (let i = 0; i < LANES; i++) {
      const lane = this.lanes[i];
      if (!lane) continue;
      lane.remaining -= n;
      if (lane.remaining === 0) {
        this.lanes[i] = undefined;
        this.finished.push({ job: lane.job, key: getLane(wasm.words, ACC, i) });
      }
    }
  }

  private moveLane(wasm: Sha1Lanes, from: number, to: number): void {
    for (const off of [ISTATE, OSTATE, U, ACC])
      for (let i = 0; i < 5; i++) wasm.words[off / 4 + 4 * i + to] = wasm.words[off / 4 + 4 * i + from];
    this.lanes[to] = this.lanes[from];
    this.lanes[from] = undefined;
  }

  /** Puts waiting jobs into free lanes: their HMAC states, U1 = HMAC(password, salt || 1), ACC = U1. */
  private fillLanes(wasm: Sha1Lanes): void {
    const free: number[] = [];
    for (let i = 0; i < LANES; i++) if (!this.lanes[i]) free.push(i);
    const starting: Array<{ index: number; job: Job }> = [];
    for (const index of free) {
      const job = this.waiting.shift();
      if (!job) break;
      starting.push({ index, job });
    }
    if (starting.length === 0) return;
    const { words } = wasm;
    // HMAC (RFC 2104): a key longer than a block is hashed first; then zero-padded to the block.
    const keys = starting.map(({ job }) => {
      const key = Buffer.alloc(BLOCK_BYTES);
      (job.password.length > BLOCK_BYTES
        ? createHash("sha1").update(job.password).digest()
        : job.password
      ).copy(key);
      return key;
    });
    for (const [pad, target] of [
      [0x36, ISTATE],
      [0x5c, OSTATE],
    ]) {
      keys.forEach((key, lane) => {
        for (let i = 0; i < 5; i++) words[STATE / 4 + 4 * i + lane] = SHA1_IV[i];
        for (let i = 0; i < 16; i++)
          words[BLOCK / 4 + 4 * i + lane] = (key.readUInt32BE(4 * i) ^ (pad * 0x01010101)) >>> 0;
      });
      wasm.absorb4();
      starting.forEach(({ index }, lane) => {
        for (let i = 0; i < 5; i++) words[target / 4 + 4 * i + index] = words[STATE / 4 + 4 * i + lane];
      });
    }
    for (const { index, job } of starting) {
      const u1 = createHmac("sha1", job.password)
        .update(job.salt)
        .update(Buffer.from([0, 0, 0, 1]))
        .digest();
      setLane(words, U, index, u1);
      setLane(words, ACC, index, u1);
      this.lanes[index] = { job, remaining: job.rounds - 1 };
    }
  }
}
