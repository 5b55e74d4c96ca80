// The PBKDF2-HMAC-SHA1 inner loop as a small WebAssembly module assembled by this file at load time (the daemons
// ship as one JavaScript file, so no .wasm file and no toolchain). Why: node:crypto spends ~250-350 ns per PBKDF2
// iteration here, mostly copying OpenSSL 3's HMAC contexts, where the work itself is two SHA-1 compressions from
// states that stay the same for a password. This module keeps those states in memory and runs the iterations
// of four passwords at once in the four 32-bit lanes of WebAssembly SIMD (v128), one lane per password; see
// pbkdf2lanes.ts for the figures and the scheduling.
//
// One iteration (RFC 8018 PBKDF2, RFC 2104 HMAC): U' = SHA1(opad-state, SHA1(ipad-state, U)), ACC ^= U'. Both
// messages are 20 bytes after a 64-byte key block, so every block is the 5 words of U, 0x80000000, zeros and
// the bit length 672: the generator folds those constant words into the code (round constants included), and
// drops the message-schedule terms that are zero. The same generator writes the v128 code and a plain i32 copy
// for a lone password. The bytes of the format come from ../wasm/assembler.ts.

import { Bytes, EMPTY_BLOCK, EXPORT, I32, MODULE_HEADER, OP, SECTION, SIMD, V128 } from "../wasm/assembler";

// Memory layout (bytes). Every "word" is 16 bytes: the same SHA-1 word of the 4 lanes, lane i at +4*i, as
// native little-endian u32 (what a Uint32Array sees). The JavaScript side fills and reads lanes there.
/** The HMAC inner state per lane: SHA-1 of (key ^ ipad), 5 words. */
export const ISTATE = 0;
/** The HMAC outer state per lane: SHA-1 of (key ^ opad). */
export const OSTATE = 80;
/** The last U per lane, and the XOR of all U so far (the derived key once the rounds are done). */
export const U = 160;
export const ACC = 240;
/** absorb(): compresses the 16-word BLOCK into the 5-word STATE, for the states' precomputation. */
export const BLOCK = 320;
export const STATE = 576;
/** The constants of the v128 code (round constants, folded message words), each splatted to 16 bytes. */
const CONSTANTS = 1024;
/** Lanes per v128. */
export const LANES = 4;

const rotl = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;

/**
 * Arithmetic on one SHA-1 word, for both shapes of the code: `v128` works on the 4 lanes at once, `i32` on
 * lane 0 only (the same memory layout). Each method emits code that consumes its operands from the stack and
 * leaves its result there, except where a local is named.
 */
interface Arith {
  readonly type: number;
  readonly code: Bytes;
  get(local: number): void;
  set(local: number): void;
  /** Pushes the word at memory offset `off`. */
  load(off: number): void;
  /** Stores the value on the stack at memory offset `off` (the address pushed first by storeAddress). */
  storeAddress(): void;
  store(off: number): void;
  constant(v: number): void;
  add(): void;
  xor(): void;
  /** Rotates local `x` left by n. */
  rotl(x: number, n: number): void;
  /** SHA-1's Ch(b,c,d) and Maj(b,c,d) of three locals. */
  ch(b: number, c: number, d: number): void;
  maj(b: number, c: number, d: number): void;
}

function scalarArith(): Arith {
  const code = new Bytes();
  const get = (l: number) => code.local(OP.local_get, l);
  return {
    type: I32,
    code,
    get,
    set: (l) => code.local(OP.local_set, l),
    load: (off) => {
      code.op(OP.i32_const, 0, OP.i32_load, 2);
      code.uleb(off);
    },
    storeAddress: () => code.op(OP.i32_const, 0),
    store: (off) => {
      code.op(OP.i32_store, 2);
      code.uleb(off);
    },
    constant: (v) => {
      code.byte(OP.i32_const);
      code.sleb32(v);
    },
    add: () => code.byte(OP.i32_add),
    xor: () => code.byte(OP.i32_xor),
    rotl: (x, n) => {
      get(x);
      code.op(OP.i32_const, n, OP.i32_rotl);
    },
    // d ^ (b & (c ^ d))
    ch: (b, c, d) => {
      get(d);
      get(b);
      get(c);
      get(d);
      code.op(OP.i32_xor, OP.i32_and, OP.i32_xor);
    },
    // (b & c) | (d & (b | c))
    maj: (b, c, d) => {
      get(b);
      get(c);
      code.byte(OP.i32_and);
      get(d);
      get(b);
      get(c);
      code.op(OP.i32_or, OP.i32_and, OP.i32_or);
    },
  };
}

/**
 * v128 constants are loaded from a table in memory: one load (folded into the operation using it), where
 * v128.const takes V8 several instructions to build.
 */
function simdArith(table: Map<number, number>): Arith {
  const code = new Bytes();
  const get = (l: number) => code.local(OP.local_get, l);
  const load = (off: number) => {
    code.op(OP.i32_const, 0);
    code.simd(SIMD.v128_load);
    code.byte(4); // alignment 2^4
    code.uleb(off);
  };
  return {
    type: V128,
    code,
    get,
    set: (l) => code.local(OP.local_set, l),
    load,
    storeAddress: () => code.op(OP.i32_const, 0),
    store: (off) => {
      code.simd(SIMD.v128_store);
      code.byte(4);
      code.uleb(off);
    },
    constant: (v) => {
      const key = v >>> 0;
      if (!table.has(key)) table.set(key, CONSTANTS + 16 * table.size);
      load(table.get(key)!);
    },
    add: () => code.simd(SIMD.i32x4_add),
    xor: () => code.simd(SIMD.v128_xor),
    // No lane rotation in WebAssembly SIMD: (x << n) | (x >>> 32-n).
    rotl: (x, n) => {
      get(x);
      code.op(OP.i32_const, n);
      code.simd(SIMD.i32x4_shl);
      get(x);
      code.op(OP.i32_const, 32 - n);
      code.simd(SIMD.i32x4_shr_u, SIMD.v128_or);
    },
    // bitselect(v1, v2, mask) = v1 where the mask has ones, else v2.
    ch: (b, c, d) => {
      get(c);
      get(d);
      get(b);
      code.simd(SIMD.v128_bitselect);
    },
    // Where b and d differ, c decides; where they agree, either.
    maj: (b, c, d) => {
      get(c);
      get(b);
      get(b);
      get(d);
      code.simd(SIMD.v128_xor, SIMD.v128_bitselect);
    },
  };
}

/** A message word: a constant known when generating, or a local. */
type Word = { value: number } | { local: number };

/**
 * Code for one SHA-1 compression: the state is read from memory at `stateOff`, the 16 message words are `w`,
 * and the new state (state + working variables) is left in the locals `out`. `scratch` names 16 + 6 free locals:
 * the message-schedule window, a..e and one temporary.
 */
function compress(f: Arith, stateOff: number, w: Word[], out: number[], scratch: number[]): void {
  const window = scratch.slice(0, 16);
  let [a, b, c, d, e] = scratch.slice(16, 21);
  const tmp = scratch[21];
  const words: Word[] = [...w];
  const vars = [a, b, c, d, e];
  for (let i = 0; i < 5; i++) {
    f.load(stateOff + 16 * i);
    f.set(vars[i]);
  }
  for (let t = 0; t < 80; t++) {
    if (t >= 16) {
      // W[t] = rotl(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16], 1), the constant terms folded into one.
      const terms = [words[t - 3], words[t - 8], words[t - 14], words[t - 16]];
      let folded = 0;
      const locals: number[] = [];
      for (const x of terms) {
        if ("value" in x) folded ^= x.value;
        else locals.push(x.local);
      }
      if (locals.length === 0) words.push({ value: rotl(folded, 1) });
      else {
        locals.forEach((l, i) => {
          f.get(l);
          if (i > 0) f.xor();
        });
        if (folded !== 0) {
          f.constant(folded);
          f.xor();
        }
        const slot = window[t % 16];
        f.set(tmp);
        f.rotl(tmp, 1);
        f.set(slot);
        words.push({ local: slot });
      }
    }
    const [k, fn] =
      t < 20
        ? [0x5a827999, "ch"]
        : t < 40
          ? [0x6ed9eba1, "parity"]
          : t < 60
            ? [0x8f1bbcdc, "maj"]
            : [0xca62c1d6, "parity"];
    // e = rotl(a,5) + f(b,c,d) + e + K + W[t]; then the roles rotate, so e's local holds the next a.
    f.rotl(a, 5);
    if (fn === "ch") f.ch(b, c, d);
    else if (fn === "maj") f.maj(b, c, d);
    else {
      f.get(b);
      f.get(c);
      f.xor();
      f.get(d);
      f.xor();
    }
    f.add();
    f.get(e);
    f.add();
    const wt = words[t];
    if ("value" in wt) f.constant((k + wt.value) | 0);
    else {
      f.get(wt.local);
      f.constant(k);
      f.add();
    }
    f.add();
    f.set(e);
    f.rotl(b, 30);
    f.set(b);
    [a, b, c, d, e] = [e, a, b, c, d];
  }
  const final = [a, b, c, d, e];
  for (let i = 0; i < 5; i++) {
    f.load(stateOff + 16 * i);
    f.get(final[i]);
    f.add();
    f.set(out[i]);
  }
}

/** The message block of an iteration: the 20-byte U in 5 locals, then SHA-1 padding for 64 + 20 bytes. */
function iterationBlock(u: number[]): Word[] {
  const w: Word[] = u.map((local) => ({ local }));
  w.push({ value: 0x80000000 });
  for (let i = 6; i < 15; i++) w.push({ value: 0 });
  w.push({ value: (64 + 20) * 8 });
  return w;
}

/**
 * iterate(n): n PBKDF2 iterations from U and ACC, back into U and ACC. Locals: 0 the count n, then 5 for U,
 * 5 for ACC, 5 for the inner hash, 22 scratch.
 */
function iterateFunction(f: Arith): Bytes {
  const u = [1, 2, 3, 4, 5];
  const acc = [6, 7, 8, 9, 10];
  const inner = [11, 12, 13, 14, 15];
  const scratch = Array.from({ length: 22 }, (_, i) => 16 + i);
  for (let i = 0; i < 5; i++) {
    f.load(U + 16 * i);
    f.set(u[i]);
    f.load(ACC + 16 * i);
    f.set(acc[i]);
  }
  // block { loop { if n == 0 break; ...; n -= 1; continue } }
  f.code.op(OP.block, EMPTY_BLOCK, OP.loop, EMPTY_BLOCK);
  f.get(0);
  f.code.op(OP.i32_eqz, OP.br_if, 1);
  compress(f, ISTATE, iterationBlock(u), inner, scratch);
  compress(f, OSTATE, iterationBlock(inner), u, scratch);
  for (let i = 0; i < 5; i++) {
    f.get(acc[i]);
    f.get(u[i]);
    f.xor();
    f.set(acc[i]);
  }
  f.get(0);
  f.code.op(OP.i32_const, 1, OP.i32_sub);
  f.set(0);
  f.code.op(OP.br, 0, OP.end, OP.end);
  for (let i = 0; i < 5; i++) {
    f.storeAddress();
    f.get(u[i]);
    f.store(U + 16 * i);
    f.storeAddress();
    f.get(acc[i]);
    f.store(ACC + 16 * i);
  }
  return encode(f, 37);
}

/** absorb(): STATE = compress(STATE, BLOCK). Locals: 16 message words, 5 results, 22 scratch. */
function absorbFunction(f: Arith): Bytes {
  const w = Array.from({ length: 16 }, (_, i) => i);
  const out = [16, 17, 18, 19, 20];
  const scratch = Array.from({ length: 22 }, (_, i) => 21 + i);
  for (let i = 0; i < 16; i++) {
    f.load(BLOCK + 16 * i);
    f.set(w[i]);
  }
  compress(
    f,
    STATE,
    w.map((local) => ({ local })),
    out,
    scratch,
  );
  for (let i = 0; i < 5; i++) {
    f.storeAddress();
    f.get(out[i]);
    f.store(STATE + 16 * i);
  }
  return encode(f, 43);
}

/** The function body: one run of `locals` locals of its type, its code, end. */
function encode(f: Arith, locals: number): Bytes {
  const body = new Bytes();
  body.byte(1);
  body.uleb(locals);
  body.byte(f.type);
  body.append(f.code);
  body.byte(OP.end);
  return body;
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const table = new Map<number, number>();
  const functions = [
    iterateFunction(simdArith(table)),
    iterateFunction(scalarArith()),
    absorbFunction(simdArith(table)),
  ];
  const out = new Bytes();
  out.op(...MODULE_HEADER);
  out.section(SECTION.type, (p) => p.op(2, 0x60, 1, I32, 0, 0x60, 0, 0)); // 0: (i32) -> (), 1: () -> ()
  out.section(SECTION.function, (p) => p.op(3, 0, 0, 1)); // iterate4, iterate1, absorb4
  out.section(SECTION.memory, (p) => p.op(1, 0, 1)); // one memory of one page
  out.section(SECTION.export, (p) => {
    const exports: Array<[string, number, number]> = [
      ["memory", EXPORT.memory, 0],
      ["iterate4", EXPORT.function, 0],
      ["iterate1", EXPORT.function, 1],
      ["absorb4", EXPORT.function, 2],
    ];
    p.uleb(exports.length);
    for (const [name, kind, index] of exports) {
      p.name(name);
      p.op(kind, index);
    }
  });
  out.section(SECTION.code, (p) => {
    p.uleb(functions.length);
    for (const f of functions) p.sized(f);
  });
  // The constant table, each value in all four lanes: one active data segment at CONSTANTS.
  out.section(SECTION.data, (p) => {
    p.op(1, 0, OP.i32_const);
    p.sleb32(CONSTANTS);
    p.byte(OP.end);
    p.uleb(table.size * 16);
    for (const v of table.keys())
      for (let lane = 0; lane < LANES; lane++) p.op(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  });
  return out.bytes();
}

export interface Sha1Lanes {
  /** The module's memory as u32 words; word w of lane l is at index 4*w + l, offsets above divided by 4. */
  readonly words: Uint32Array;
  /** n iterations of all 4 lanes. */
  iterate4(n: number): void;
  /** n iterations of lane 0 only, in plain 32-bit code. */
  iterate1(n: number): void;
  /** STATE = SHA-1 compression of BLOCK into STATE, in all 4 lanes. */
  absorb4(): void;
}

let compiled: WebAssembly.Module | undefined;

/** A fresh instance (64 KiB of memory); not reentrant, which on one thread it need not be. */
export function createSha1Lanes(): Sha1Lanes {
  compiled ??= new WebAssembly.Module(moduleBytes());
  const ex = new WebAssembly.Instance(compiled, {}).exports as {
    memory: WebAssembly.Memory;
    iterate4: (n: number) => void;
    iterate1: (n: number) => void;
    absorb4: () => void;
  };
  return {
    words: new Uint32Array(ex.memory.buffer),
    iterate4: ex.iterate4,
    iterate1: ex.iterate1,
    absorb4: ex.absorb4,
  };
}
