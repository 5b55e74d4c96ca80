// The backup file's encryption: a round trip gives the same bytes for every size around the chunk boundaries;
// a wrong passphrase, a flipped byte, a cut, reordered, dropped or appended chunk are each refused with a clear
// error, and no plaintext of a chunk is passed on before that chunk authenticated. And the key file checks.
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BackupError,
  decrypt,
  DEFAULT_CHUNK,
  encrypt,
  fromBuffers,
  KeyFileError,
  MAGIC,
  readKeyFile,
} from "../../tools/state/crypto";

const PASS = "correct horse battery staple";
const CHEAP = { scrypt: { N: 1024, r: 8, p: 1 }, chunkSize: 1024 };
const SEALED = CHEAP.chunkSize + 16;

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of gen) out.push(b);
  return Buffer.concat(out);
}

/** Pieces of odd sizes, as a pipe delivers them. */
function pieces(data: Buffer, size = 777): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

const seal = (plain: Buffer, opts = CHEAP) => collect(encrypt(fromBuffers(pieces(plain)), PASS, opts));
const open = (file: Buffer, pass = PASS) => collect(decrypt(fromBuffers(pieces(file, 1000)), pass));

/** Where the chunks start: after magic, length and header. */
const headerEnd = (file: Buffer) => MAGIC.length + 4 + file.readUInt32BE(MAGIC.length);

async function refusal(file: Buffer, pass = PASS): Promise<{ message: string; passed: Buffer }> {
  const passed: Buffer[] = [];
  try {
    for await (const b of decrypt(fromBuffers(pieces(file, 1000)), pass)) passed.push(b);
  } catch (e) {
    expect(e).toBeInstanceOf(BackupError);
    return { message: (e as Error).message, passed: Buffer.concat(passed) };
  }
  throw new Error("decrypted without an error");
}

describe("the backup encryption", () => {
  it.each([0, 1, 1023, 1024, 1025, 3 * 1024, 3 * 1024 + 5, 50_000])(
    "gives back exactly %i bytes",
    async (size) => {
      const plain = randomBytes(size);
      const file = await seal(plain);
      expect(file.subarray(0, MAGIC.length)).toEqual(MAGIC);
      // One sealed chunk per started chunk of plaintext, the last one possibly empty, never more.
      const chunks = Math.max(1, Math.ceil(size / CHEAP.chunkSize));
      expect(file.length - headerEnd(file)).toBe(size + chunks * 16);
      expect(await open(file)).toEqual(plain);
    },
  );

  it("uses scrypt with a random salt and nonce prefix: the same input never gives the same file", async () => {
    const plain = Buffer.from("same plaintext ".repeat(100));
    const [a, b] = [await seal(plain), await seal(plain)];
    expect(a.equals(b)).toBe(false);
    const header = JSON.parse(a.subarray(MAGIC.length + 4, headerEnd(a)).toString());
    expect(header).toMatchObject({ kdf: "scrypt", cipher: "aes-256-gcm", chunkSize: 1024 });
    expect(Buffer.from(header.salt, "base64")).toHaveLength(16);
    expect(Buffer.from(header.noncePrefix, "base64")).toHaveLength(7);
    expect(a.toString("latin1")).not.toContain("same plaintext");
  });

  it("defaults to scrypt N=2^17 and 64 KiB chunks", async () => {
    const plain = randomBytes(DEFAULT_CHUNK + 10);
    const file = await collect(encrypt(fromBuffers([plain]), PASS));
    const header = JSON.parse(file.subarray(MAGIC.length + 4, headerEnd(file)).toString());
    expect(header.scrypt).toEqual({ N: 131072, r: 8, p: 1 });
    expect(header.chunkSize).toBe(65536);
    expect(await open(file)).toEqual(plain);
  });

  it("refuses a wrong passphrase before decrypting anything", async () => {
    const r = await refusal(await seal(randomBytes(5000)), "a different passphrase!");
    expect(r.message).toMatch(/passphrase in the key file is not the one this backup was made with/);
    expect(r.passed).toHaveLength(0);
  });

  it("refuses a flipped byte in a chunk, having passed on only the chunks before it", async () => {
    const plain = randomBytes(5000);
    const file = await seal(plain);
    const bad = Buffer.from(file);
    bad[headerEnd(file) + 2 * SEALED + 100] ^= 1;
    const r = await refusal(bad);
    expect(r.message).toMatch(
      /^chunk 2 \(from byte \d+ of the file\) failed authentication: the file is damaged/,
    );
    expect(r.passed).toEqual(plain.subarray(0, 2 * CHEAP.chunkSize));
  });

  it("refuses a flipped byte in a tag, and in the header", async () => {
    const file = await seal(randomBytes(5000));
    const tag = Buffer.from(file);
    tag[headerEnd(file) + SEALED - 1] ^= 0x80;
    expect((await refusal(tag)).message).toMatch(/^chunk 0 .* failed authentication/);
    const header = Buffer.from(file);
    header[headerEnd(file) - 5] ^= 0x01;
    expect((await refusal(header)).message).toMatch(/header is damaged|failed authentication/);
  });

  it("refuses a file cut at a chunk boundary, inside a chunk, inside its header, or empty", async () => {
    const file = await seal(randomBytes(5000));
    const start = headerEnd(file);
    expect((await refusal(file.subarray(0, start + 2 * SEALED))).message).toMatch(
      /cut short after 2 chunks, before its last one \(a truncated file\)/,
    );
    expect((await refusal(file.subarray(0, start + 2 * SEALED + 500))).message).toMatch(
      /^chunk 2 .* failed authentication: the file is damaged or cut short/,
    );
    expect((await refusal(file.subarray(0, start + 8))).message).toMatch(/last chunk is missing|cut short/);
    expect((await refusal(file.subarray(0, start))).message).toMatch(/last chunk is missing/);
    expect((await refusal(file.subarray(0, start - 10))).message).toMatch(/cut short inside its header/);
    expect((await refusal(Buffer.alloc(0))).message).toMatch(/not a backup of this tool/);
    expect((await refusal(Buffer.from("PK\x03\x04 a zip file"))).message).toMatch(
      /not a backup of this tool/,
    );
  });

  it("refuses reordered, dropped, duplicated and appended chunks", async () => {
    const file = await seal(randomBytes(5000));
    const start = headerEnd(file);
    const chunk = (i: number) => file.subarray(start + i * SEALED, start + (i + 1) * SEALED);
    const head = file.subarray(0, start);
    const last = file.subarray(start + 4 * SEALED);
    const swapped = Buffer.concat([head, chunk(0), chunk(2), chunk(1), chunk(3), last]);
    expect((await refusal(swapped)).message).toMatch(/^chunk 1 .*reordered/);
    const dropped = Buffer.concat([head, chunk(0), chunk(2), chunk(3), last]);
    expect((await refusal(dropped)).message).toMatch(/^chunk 1 /);
    const twice = Buffer.concat([head, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3), last]);
    expect((await refusal(twice)).message).toMatch(/^chunk 1 /);
    const appended = Buffer.concat([file, randomBytes(50)]);
    expect((await refusal(appended)).message).toMatch(/failed authentication/);
    // The last chunk of another file with the same key is still refused: its nonce prefix differs.
    const other = await seal(randomBytes(5000));
    const mixed = Buffer.concat([
      file.subarray(0, start + 4 * SEALED),
      other.subarray(headerEnd(other) + 4 * SEALED),
    ]);
    expect((await refusal(mixed)).message).toMatch(/^chunk 4 .*failed authentication/);
  });
});

describe("the key file", () => {
  const dir = mkdtempSync(join(tmpdir(), "state-keys-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const keyFile = (content: string, mode = 0o600) => {
    const path = join(dir, `key-${++n}`);
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  };
  const refused = (path: string) => {
    try {
      readKeyFile(path);
    } catch (e) {
      expect(e).toBeInstanceOf(KeyFileError);
      return (e as Error).message;
    }
    throw new Error("accepted");
  };

  it("gives the passphrase without its final newline", () => {
    expect(readKeyFile(keyFile("sixteen chars ok\n"))).toBe("sixteen chars ok");
    expect(readKeyFile(keyFile("sixteen chars ok\r\n"))).toBe("sixteen chars ok");
    expect(readKeyFile(keyFile("  spaces count too  ", 0o400))).toBe("  spaces count too  ");
  });

  it("refuses a passphrase under 16 characters, saying how to make one", () => {
    const path = keyFile("fifteen chars!!\n");
    expect(refused(path)).toBe(
      `key file ${path} holds 15 characters: a passphrase needs at least 16 (for example: openssl rand -base64 32 > ${path})`,
    );
    expect(refused(keyFile(""))).toMatch(/holds 0 characters/);
  });

  it("refuses a file that group or others may read or write, naming its mode and the fix", () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      const path = keyFile("a long enough passphrase", mode);
      expect(refused(path)).toBe(
        `key file ${path} has mode 0${mode.toString(8)}: group and others must have no access to it (chmod 600 ${path})`,
      );
    }
  });

  it("refuses a missing file and a folder", () => {
    expect(refused(join(dir, "nope"))).toMatch(/key file .*nope cannot be read: ENOENT/);
    mkdirSync(join(dir, "folder"), { mode: 0o700 });
    expect(refused(join(dir, "folder"))).toMatch(/is not a file/);
  });

  it("never shows the passphrase in a refusal", () => {
    const secret = "s3cret-but-too-short";
    expect(refused(keyFile(secret, 0o644))).not.toContain(secret);
  });
});
