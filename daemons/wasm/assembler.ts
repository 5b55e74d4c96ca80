// A small WebAssembly assembler for the daemons' generated modules (doveauth/sha1wasm.ts, filtermail/base64wasm.ts):
// the daemons ship as one JavaScript file and need no toolchain, so each module is written byte by byte at its
// first use. Only the opcodes those modules use are named here
// (https://webassembly.github.io/spec/core/binary/instructions.html); SIMD ones follow the 0xfd prefix, as LEB128.

// prettier-ignore
export const OP = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, br: 0x0c, br_if: 0x0d, end: 0x0b, return: 0x0f,
  local_get: 0x20, local_set: 0x21, local_tee: 0x22,
  i32_load: 0x28, i32_load8_u: 0x2d, i32_load16_u: 0x2f, i32_store: 0x36, i32_const: 0x41,
  i32_eqz: 0x45, i32_ne: 0x47, i32_lt_u: 0x49, i32_ge_u: 0x4f,
  i32_add: 0x6a, i32_sub: 0x6b, i32_mul: 0x6c, i32_and: 0x71, i32_or: 0x72, i32_xor: 0x73, i32_rotl: 0x77,
  simd: 0xfd,
} as const;
// prettier-ignore
export const SIMD = {
  v128_load: 0, v128_store: 11, v128_const: 12, i8x16_swizzle: 14, i8x16_splat: 15,
  v128_and: 78, v128_or: 80, v128_xor: 81, v128_bitselect: 82, v128_any_true: 83,
  i16x8_shr_u: 141, i32x4_shl: 171, i32x4_shr_u: 173, i32x4_add: 174,
} as const;
/** Value types, and the block type of a block that takes and leaves nothing. */
export const I32 = 0x7f;
export const V128 = 0x7b;
export const EMPTY_BLOCK = 0x40;
/** Section ids of the binary format. */
export const SECTION = { type: 1, function: 3, memory: 5, export: 7, code: 10, data: 11 } as const;
/** Export kinds. */
export const EXPORT = { function: 0, memory: 2 } as const;
/** The module header: magic and version 1. */
export const MODULE_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00] as const;

/**
 * A growing byte buffer the module is written into. Plain number arrays and spreads made assembling take ~25 ms
 * and left ~4 MiB of heap behind; this writes each byte once.
 */
export class Bytes {
  private buf = new Uint8Array(4096);
  length = 0;
  byte(b: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = b;
  }
  op(...bytes: number[]): void {
    for (const b of bytes) this.byte(b);
  }
  uleb(n: number): void {
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n !== 0) b |= 0x80;
      this.byte(b);
    } while (n !== 0);
  }
  /** Signed LEB128 of a 32-bit pattern. */
  sleb32(v: number): void {
    let n = v | 0;
    for (;;) {
      const b = n & 0x7f;
      n >>= 7;
      if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return this.byte(b);
      this.byte(b | 0x80);
    }
  }
  append(other: Bytes): void {
    for (let i = 0; i < other.length; i++) this.byte(other.buf[i]);
  }
  /** local.get or local.set of local `index`. */
  local(op: typeof OP.local_get | typeof OP.local_set, index: number): void {
    this.byte(op);
    this.uleb(index);
  }
  /** `other` after its length: a function body or a section's payload. */
  sized(other: Bytes): void {
    this.uleb(other.length);
    this.append(other);
  }
  /** Consecutive SIMD instructions with no immediates. */
  simd(...ops: number[]): void {
    for (const o of ops) {
      this.byte(OP.simd);
      this.uleb(o);
    }
  }
  /** A module section: its id, then the payload `write` produces, after its length. */
  section(id: number, write: (payload: Bytes) => void): void {
    const payload = new Bytes();
    write(payload);
    this.byte(id);
    this.sized(payload);
  }
  /** A name as the binary format spells it: its length, then its UTF-8 bytes. */
  name(text: string): void {
    const utf8 = Buffer.from(text, "utf8");
    this.uleb(utf8.length);
    for (const b of utf8) this.byte(b);
  }
  bytes(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}
