// SHA-512 (FIPS 180-4) whose compression function is a small WebAssembly module assembled by this file.
// sha512-crypt hashes 5,000 one-block messages per password. Per call, node:crypto spends ~3 µs on set-up and
// hash-wasm ~2 µs in its JavaScript wrapper, while a compression takes well under 1 µs; here a call is a memcpy
// into WebAssembly memory plus three calls without allocation, so account creation costs a fraction of the CPU.
// The code is generated fully unrolled (80 rounds, constants inline). Checked against node:crypto in tests.
// Over 300 lines because the little assembler and the code it generates only make sense together.

// Memory layout (bytes): message block at 0 (128, big-endian as hashed), state H at 128 (8 x i64, native
// little-endian), digest at 256 (64 bytes, big-endian), and from 1024 a message area for in-place hashing.
export const BLOCK_OFF = 0;
const H_OFF = 128;
export const OUT_OFF = 256;
const MSG_OFF = 1024;
/** Longest message the in-place interface takes (the memory is one 64 KiB page). */
export const IN_PLACE_MAX_BYTES = 32 * 1024;

// WebAssembly opcodes used here (https://webassembly.github.io/spec/core/binary/instructions.html).
// prettier-ignore
const OP = {
  end: 0x0b, local_get: 0x20, local_set: 0x21, local_tee: 0x22, i32_const: 0x41, i64_const: 0x42,
  i64_load: 0x29, i64_store: 0x37, i64_add: 0x7c, i64_and: 0x83, i64_or: 0x84, i64_xor: 0x85, i64_shl: 0x86,
  i64_shr_u: 0x88, i64_rotr: 0x8a,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 64-bit pattern (given unsigned). */
function sleb64(v: bigint): number[] {
  let n = BigInt.asIntN(64, v);
  const out: number[] = [];
  for (;;) {
    const byte = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (byte & 0x40) === 0) || (n === -1n && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** FIPS 180-4 constants from the primes: K (cube roots, 80) and the initial state (square roots, 8). */
function constants(): { k: bigint[]; iv: bigint[] } {
  const primes: number[] = [];
  for (let n = 2; primes.length < 80; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  const iroot = (v: bigint, k: bigint): bigint => {
    let r = 1n << (BigInt(v.toString(2).length) / k + 1n);
    for (;;) {
      const next = ((k - 1n) * r + v / r ** (k - 1n)) / k;
      if (next >= r) return r;
      r = next;
    }
  };
  const mask = (1n << 64n) - 1n;
  return {
    k: primes.map((p) => iroot(BigInt(p) << 192n, 3n) & mask),
    iv: primes.slice(0, 8).map((p) => iroot(BigInt(p) << 128n, 2n) & mask),
  };
}

/** Emits function bodies with a few stack-machine helpers. */
class Body {
  readonly code: number[] = [];
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  get(i: number): this {
    return this.op(OP.local_get, ...uleb(i));
  }
  set(i: number): this {
    return this.op(OP.local_set, ...uleb(i));
  }
  tee(i: number): this {
    return this.op(OP.local_tee, ...uleb(i));
  }
  const64(v: bigint): this {
    return this.op(OP.i64_const, ...sleb64(v));
  }
  load(offset: number): this {
    return this.op(OP.i32_const, 0, OP.i64_load, 3, ...uleb(offset));
  }
  /** Stores the i64 computed by `value` at `offset`. */
  store(offset: number, value: () => void): this {
    this.op(OP.i32_const, 0);
    value();
    return this.op(OP.i64_store, 3, ...uleb(offset));
  }
  rotr(n: number): this {
    return this.const64(BigInt(n)).op(OP.i64_rotr);
  }
  shr(n: number): this {
    return this.const64(BigInt(n)).op(OP.i64_shr_u);
  }
  /** rotr(v,r1) ^ rotr(v,r2) ^ (rotr or shr)(v,r3) of local v. */
  sigma(v: number, r1: number, r2: number, r3: number, lastIsShift: boolean): this {
    this.get(v).rotr(r1).get(v).rotr(r2).op(OP.i64_xor).get(v);
    if (lastIsShift) this.shr(r3);
    else this.rotr(r3);
    return this.op(OP.i64_xor);
  }
  /** Byte-swaps the i64 in local v (big-endian <-> little-endian), leaving it on the stack. */
  bswap(v: number): this {
    const m8 = 0x00ff00ff00ff00ffn;
    const m16 = 0x0000ffff0000ffffn;
    this.get(v)
      .shr(8)
      .const64(m8)
      .op(OP.i64_and)
      .get(v)
      .const64(m8)
      .op(OP.i64_and)
      .const64(8n)
      .op(OP.i64_shl, OP.i64_or)
      .set(v);
    this.get(v)
      .shr(16)
      .const64(m16)
      .op(OP.i64_and)
      .get(v)
      .const64(m16)
      .op(OP.i64_and)
      .const64(16n)
      .op(OP.i64_shl, OP.i64_or);
    return this.rotr(32);
  }
  /** The function entry: size, local declarations, code, end. */
  encode(i64Locals: number): number[] {
    const locals = i64Locals > 0 ? [1, ...uleb(i64Locals), 0x7e] : [0];
    const body = [...locals, ...this.code, OP.end];
    return [...uleb(body.length), ...body];
  }
}

/** compress(): one block from BLOCK into H. Locals 0-15: schedule window, 16-23: working variables, 24: t1. */
function compressFunction(k: bigint[]): number[] {
  const f = new Body();
  const W = (t: number) => t % 16;
  const T1 = 24;
  for (let t = 0; t < 16; t++)
    f.load(BLOCK_OFF + 8 * t)
      .set(W(t))
      .bswap(W(t))
      .set(W(t));
  let r = [16, 17, 18, 19, 20, 21, 22, 23]; // locals holding a..h this round
  for (let i = 0; i < 8; i++) f.load(H_OFF + 8 * i).set(r[i]);
  for (let t = 0; t < 80; t++) {
    const [a, b, c, d, e, ff, g, h] = r;
    if (t >= 16) {
      // W[t] = sigma1(W[t-2]) + W[t-7] + sigma0(W[t-15]) + W[t-16], into the slot of W[t-16].
      f.sigma(W(t - 2), 19, 61, 6, true)
        .get(W(t - 7))
        .op(OP.i64_add);
      f.sigma(W(t - 15), 1, 8, 7, true)
        .op(OP.i64_add)
        .get(W(t - 16))
        .op(OP.i64_add)
        .set(W(t));
    }
    // t1 = h + Sigma1(e) + Ch(e,f,g) + K[t] + W[t]
    f.get(h).sigma(e, 14, 18, 41, false).op(OP.i64_add);
    f.get(e)
      .get(ff)
      .op(OP.i64_and)
      .get(e)
      .const64(-1n)
      .op(OP.i64_xor)
      .get(g)
      .op(OP.i64_and, OP.i64_xor, OP.i64_add);
    f.const64(k[t]).op(OP.i64_add).get(W(t)).op(OP.i64_add).set(T1);
    // d += t1 (the next e); h = t1 + Sigma0(a) + Maj(a,b,c) (the next a); then the roles rotate.
    f.get(d).get(T1).op(OP.i64_add).set(d);
    f.get(T1).sigma(a, 28, 34, 39, false).op(OP.i64_add);
    f.get(a)
      .get(b)
      .op(OP.i64_and)
      .get(a)
      .get(c)
      .op(OP.i64_and, OP.i64_xor)
      .get(b)
      .get(c)
      .op(OP.i64_and, OP.i64_xor, OP.i64_add)
      .set(h);
    r = [h, a, b, c, d, e, ff, g];
  }
  for (let i = 0; i < 8; i++)
    f.store(H_OFF + 8 * i, () =>
      f
        .load(H_OFF + 8 * i)
        .get(r[i])
        .op(OP.i64_add),
    );
  return f.encode(25);
}

/** reset(): H = initial state. */
function resetFunction(iv: bigint[]): number[] {
  const f = new Body();
  for (let i = 0; i < 8; i++) f.store(H_OFF + 8 * i, () => f.const64(iv[i]));
  return f.encode(0);
}

/** finish(): the digest, big-endian, at OUT. */
function finishFunction(): number[] {
  const f = new Body();
  for (let i = 0; i < 8; i++) {
    f.load(H_OFF + 8 * i).set(0);
    f.store(OUT_OFF + 8 * i, () => f.bswap(0));
  }
  return f.encode(1);
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const { k, iv } = constants();
  const section = (id: number, payload: number[]) => [id, ...uleb(payload.length), ...payload];
  const name = (s: string) => [...uleb(s.length), ...Buffer.from(s, "ascii")];
  const magicAndVersion = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const exportEntry = (n: string, kind: number, index: number) => [...name(n), kind, index];
  const exports = [
    ...exportEntry("memory", 2, 0),
    ...exportEntry("compress", 0, 0),
    ...exportEntry("reset", 0, 1),
    ...exportEntry("finish", 0, 2),
  ];
  return Uint8Array.from([
    ...magicAndVersion,
    ...section(1, [1, 0x60, 0, 0]), // type 0: () -> ()
    ...section(3, [3, 0, 0, 0]), // three functions of type 0
    ...section(5, [1, 0, 1]), // one memory of one page
    ...section(7, [4, ...exports]),
    ...section(10, [3, ...compressFunction(k), ...resetFunction(iv), ...finishFunction()]),
  ]);
}

let compiled: WebAssembly.Module | undefined;

/**
 * Hashing of a message written straight into WebAssembly memory: the caller fills `message[0..len)` and calls
 * digest(len); the result is in `out` until the next call. Saves two copies and an allocation per
 * sha512-crypt round.
 */
export interface InPlaceSha512 {
  /** IN_PLACE_MAX_BYTES long. */
  readonly message: Uint8Array;
  readonly out: Uint8Array;
  digest(len: number): void;
}

export type WasmSha512 = ((data: Uint8Array) => Uint8Array) & { readonly inPlace: InPlaceSha512 };

/** A SHA-512 function backed by one WebAssembly instance (one per thread; not reentrant). */
export function createWasmSha512(): WasmSha512 {
  compiled ??= new WebAssembly.Module(moduleBytes());
  const ex = new WebAssembly.Instance(compiled, {}).exports as {
    memory: WebAssembly.Memory;
    compress: () => void;
    reset: () => void;
    finish: () => void;
  };
  const mem = new Uint8Array(ex.memory.buffer);
  const writeLength = (len: number): void => {
    const bits = len * 8;
    const hi = Math.floor(bits / 2 ** 32);
    for (let i = 0; i < 4; i++) {
      mem[BLOCK_OFF + 120 + i] = (hi >>> (24 - 8 * i)) & 0xff;
      mem[BLOCK_OFF + 124 + i] = (bits >>> (24 - 8 * i)) & 0xff;
    }
  };
  const inPlace: InPlaceSha512 = {
    message: mem.subarray(MSG_OFF, MSG_OFF + IN_PLACE_MAX_BYTES),
    out: mem.subarray(OUT_OFF, OUT_OFF + 64),
    digest(len) {
      if (len > IN_PLACE_MAX_BYTES)
        throw new RangeError(`in-place SHA-512 takes at most ${IN_PLACE_MAX_BYTES} bytes`);
      ex.reset();
      const full = len - (len % 128);
      for (let off = 0; off < full; off += 128) {
        mem.copyWithin(BLOCK_OFF, MSG_OFF + off, MSG_OFF + off + 128);
        ex.compress();
      }
      const rest = len - full;
      mem.copyWithin(BLOCK_OFF, MSG_OFF + full, MSG_OFF + len);
      mem.fill(0, BLOCK_OFF + rest, BLOCK_OFF + 128);
      mem[BLOCK_OFF + rest] = 0x80;
      if (rest >= 112) {
        ex.compress();
        mem.fill(0, BLOCK_OFF, BLOCK_OFF + 128);
      }
      writeLength(len);
      ex.compress();
      ex.finish();
    },
  };
  const hash = (data: Uint8Array): Uint8Array => {
    ex.reset();
    const len = data.length;
    const full = len - (len % 128);
    for (let off = 0; off < full; off += 128) {
      mem.set(data.subarray(off, off + 128), BLOCK_OFF);
      ex.compress();
    }
    // Padding (FIPS 180-4 5.1.2): 0x80, zeros, the bit length as a 128-bit big-endian number.
    const rest = len - full;
    mem.set(full === 0 ? data : data.subarray(full), BLOCK_OFF);
    mem.fill(0, BLOCK_OFF + rest, BLOCK_OFF + 128);
    mem[BLOCK_OFF + rest] = 0x80;
    if (rest >= 112) {
      ex.compress();
      mem.fill(0, BLOCK_OFF, BLOCK_OFF + 128);
    }
    writeLength(len);
    ex.compress();
    ex.finish();
    return mem.slice(OUT_OFF, OUT_OFF + 64);
  };
  return Object.assign(hash, { inPlace });
}
