// Checks that the lines of an armored payload hold only base64 characters, 16 at a time in WebAssembly SIMD, so
// that openpgp.ts needs to decode only the few bytes of the packet headers instead of the whole payload. Why: on a
// 100 KB message, decoding through node's base64 (which takes a string, so the text is first copied into one) was
// two thirds of the verdict's CPU, and its strings were most of what the filter allocated per message
// (figures in docs/daemons.md, 'Speed').
//
// A byte is checked with two table lookups (i8x16.swizzle) by its low and high nibble, the method of W. Muła and
// D. Lemire, "Faster Base64 Encoding and Decoding Using AVX2 Instructions" (2018): each high nibble has a class,
// one bit, and the low-nibble table has that bit set for the low nibbles not allowed in that class; so a byte is
// outside the alphabet exactly when the two entries share a bit. The tables are computed from the alphabet below.

import { Bytes, EMPTY_BLOCK, EXPORT, I32, MODULE_HEADER, OP, SECTION, SIMD, V128 } from "../wasm/assembler";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** Bytes of text checked per call: the module's one 64 KiB page. */
export const LINES_WINDOW = 65536;
/** The narrowest line the module checks: one v128 load. */
export const MIN_LINE_WIDTH = 16;

/** The two nibble tables for `allowed` (see the header); throws when its high nibbles need more than 8 classes. */
export function nibbleTables(allowed: string): { low: Uint8Array; high: Uint8Array } {
  const lowsOf = (h: number) => {
    let mask = 0;
    for (let l = 0; l < 16; l++) if (allowed.includes(String.fromCharCode((h << 4) | l))) mask |= 1 << l;
    return mask;
  };
  const classes: number[] = []; // the allowed low nibbles of each class, as a 16-bit mask
  const high = new Uint8Array(16);
  for (let h = 0; h < 16; h++) {
    const lows = lowsOf(h);
    let k = classes.indexOf(lows);
    if (k < 0) k = classes.push(lows) - 1;
    if (k >= 8) throw new Error("nibbleTables: more than 8 classes of high nibbles");
    high[h] = 1 << k;
  }
  const low = new Uint8Array(16);
  for (let l = 0; l < 16; l++)
    classes.forEach((lows, k) => {
      if ((lows & (1 << l)) === 0) low[l] |= 1 << k;
    });
  return { low, high };
}

// Parameters and locals of validLines.
const WIDTH = 0;
const STRIDE = 1;
const LINES = 2;
const CRLF = 3;
const LINE = 4;
const BASE = 5;
const OFF = 6;
const V = 7;
const ACC = 8;

/**
 * validLines(width, stride, lines, crlf) -> i32: how many of the `lines` lines at offset 0, each `width` bytes and
 * a line break (CR LF when crlf is 1, else LF) `stride` bytes apart, hold only alphabet bytes and end with that
 * break; it stops at the first that does not.
 */
function validLinesFunction(): Bytes {
  const { low, high } = nibbleTables(ALPHABET);
  const c = new Bytes();
  const get = (local: number) => c.local(OP.local_get, local);
  const set = (local: number) => c.local(OP.local_set, local);
  const i32 = (v: number) => {
    c.byte(OP.i32_const);
    c.sleb32(v);
  };
  const v128 = (bytes: ArrayLike<number>) => {
    c.simd(SIMD.v128_const);
    for (let i = 0; i < 16; i++) c.byte(bytes[i]);
  };
  const nibbleMask = new Uint8Array(16).fill(0x0f);
  // The address on the stack -> the v128 whose nonzero bytes are the ones outside the alphabet, or-ed into ACC.
  const checkBlock = () => {
    c.simd(SIMD.v128_load);
    c.op(0, 0); // alignment 1, offset 0
    set(V);
    v128(low);
    get(V);
    v128(nibbleMask);
    c.simd(SIMD.v128_and, SIMD.i8x16_swizzle);
    v128(high);
    get(V);
    i32(4);
    c.simd(SIMD.i16x8_shr_u);
    v128(nibbleMask);
    c.simd(SIMD.v128_and, SIMD.i8x16_swizzle, SIMD.v128_and);
    get(ACC);
    c.simd(SIMD.v128_or);
    set(ACC);
  };
  const lineEnd = () => {
    get(BASE);
    get(WIDTH);
    c.byte(OP.i32_add);
  };

  c.op(OP.block, EMPTY_BLOCK, OP.loop, EMPTY_BLOCK); // $done, $lines
  // Branch depths inside $lines: 0 continues it, 1 leaves $done.
  get(LINE);
  get(LINES);
  c.op(OP.i32_ge_u, OP.br_if, 1);
  get(LINE);
  get(STRIDE);
  c.byte(OP.i32_mul);
  set(BASE);
  v128(new Uint8Array(16));
  set(ACC);
  i32(0);
  set(OFF);
  // Every whole block but the last, then the line's last 16 bytes (overlapping the block before: checking a
  // byte twice is harmless), so that no byte of the line break is read as data.
  c.op(OP.block, EMPTY_BLOCK, OP.loop, EMPTY_BLOCK);
  get(OFF);
  i32(16);
  c.byte(OP.i32_add);
  get(WIDTH);
  c.op(OP.i32_ge_u, OP.br_if, 1);
  get(BASE);
  get(OFF);
  c.byte(OP.i32_add);
  checkBlock();
  get(OFF);
  i32(16);
  c.byte(OP.i32_add);
  set(OFF);
  c.op(OP.br, 0, OP.end, OP.end);
  lineEnd();
  i32(16);
  c.byte(OP.i32_sub);
  checkBlock();
  get(ACC);
  c.simd(SIMD.v128_any_true);
  c.op(OP.br_if, 1);
  // The line break; inside the if, depth 2 leaves $done.
  get(CRLF);
  c.op(OP.if, EMPTY_BLOCK);
  lineEnd();
  c.op(OP.i32_load16_u, 0, 0);
  i32(0x0a0d); // CR LF as a little-endian u16
  c.op(OP.i32_ne, OP.br_if, 2, OP.else);
  lineEnd();
  c.op(OP.i32_load8_u, 0, 0);
  i32(0x0a);
  c.op(OP.i32_ne, OP.br_if, 2, OP.end);
  get(LINE);
  i32(1);
  c.byte(OP.i32_add);
  set(LINE);
  c.op(OP.br, 0, OP.end, OP.end);
  get(LINE);

  const body = new Bytes();
  body.op(2, 3, I32, 2, V128); // locals: LINE, BASE, OFF as i32; V, ACC as v128
  body.append(c);
  body.byte(OP.end);
  return body;
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const out = new Bytes();
  out.op(...MODULE_HEADER);
  out.section(SECTION.type, (p) => p.op(1, 0x60, 4, I32, I32, I32, I32, 1, I32)); // (i32 x4) -> i32
  out.section(SECTION.function, (p) => p.op(1, 0));
  out.section(SECTION.memory, (p) => p.op(1, 0, LINES_WINDOW / 65536));
  out.section(SECTION.export, (p) => {
    p.uleb(2);
    p.name("memory");
    p.op(EXPORT.memory, 0);
    p.name("validLines");
    p.op(EXPORT.function, 0);
  });
  out.section(SECTION.code, (p) => {
    p.uleb(1);
    p.sized(validLinesFunction());
  });
  return out.bytes();
}

interface Checker {
  memory: Uint8Array;
  validLines: (width: number, stride: number, lines: number, crlf: number) => number;
}

/** Built at the first call; null when this runtime has no WebAssembly SIMD (V8 needs SSE4.1 on x86-64). */
let checker: Checker | null | undefined;

function build(): Checker | null {
  try {
    const ex = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes()), {}).exports as {
      memory: WebAssembly.Memory;
      validLines: Checker["validLines"];
    };
    return { memory: new Uint8Array(ex.memory.buffer), validLines: ex.validLines };
  } catch {
    return null;
  }
}

/**
 * How many of the lines at the start of `text` (each `width` bytes, width >= MIN_LINE_WIDTH, then CR LF or LF;
 * a line whose break would lie past the end of `text` does not count) hold only base64 alphabet bytes ("=" is not
 * one) and end with that line break; it stops at the first that does not. Undefined when WebAssembly SIMD is not
 * available.
 */
export function validBase64Lines(text: Uint8Array, width: number, crlf: boolean): number | undefined {
  checker ??= build();
  if (checker === null) return undefined;
  const stride = width + (crlf ? 2 : 1);
  if (width < MIN_LINE_WIDTH || stride > LINES_WINDOW)
    throw new RangeError(`validBase64Lines: width ${width}`);
  const perWindow = Math.floor(LINES_WINDOW / stride);
  const whole = Math.floor(text.length / stride); // lines whose break is inside `text`
  let done = 0;
  while (done < whole) {
    const lines = Math.min(perWindow, whole - done);
    const from = done * stride;
    checker.memory.set(text.subarray(from, from + lines * stride));
    const valid = checker.validLines(width, stride, lines, crlf ? 1 : 0);
    done += valid;
    if (valid < lines) break;
  }
  return done;
}
