// The backup file's encryption (docs/continuity.md, 'The backup file'): a passphrase from a key file, scrypt
// with a random salt, and AES-256-GCM over 64 KiB chunks in the STREAM construction. Every chunk is
// authenticated as it is read, so a restore never passes on a byte that was not written by the backup, and the
// nonce of each chunk carries its number and whether it is the last one: a reordered, dropped or cut-off chunk
// fails authentication. The header (parameters, salt, nonce prefix) is the additional data of every chunk.
//
// File = MAGIC (16 bytes) || header length (4 bytes, big-endian) || header (JSON) || chunk 0 || ... || chunk n-1
// chunk i = AES-256-GCM(key, nonce_i, plaintext_i, aad = MAGIC || length || header) || tag (16 bytes)
// nonce_i = nonce prefix (7 random bytes) || i (4 bytes, big-endian) || 1 if i = n-1 else 0 (1 byte)
// Every plaintext chunk holds chunkSize bytes except the last, which holds 0 to chunkSize bytes.
import { createCipheriv, createDecipheriv, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

export const MAGIC = Buffer.from("CHATMAILBACKUP01", "latin1");
export const BACKUP_FORMAT = "chatmail-relay-backup";
const TAG = 16;
const PREFIX = 7;
const MAX_HEADER = 4096;
/** Default scrypt cost: 2^17 x 128 x r bytes = 128 MiB of memory, about half a second. */
export const DEFAULT_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
export const DEFAULT_CHUNK = 64 * 1024;
export const MIN_PASSPHRASE = 16;

export class KeyFileError extends Error {}
export class BackupError extends Error {}

/** The passphrase in `path`: at least MIN_PASSPHRASE characters, the file readable by its owner only. */
export function readKeyFile(path: string): string {
  let mode: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new KeyFileError(`key file ${path} is not a file`);
    mode = st.mode & 0o777;
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new KeyFileError(
      `key file ${path} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  if ((mode & 0o077) !== 0)
    throw new KeyFileError(
      `key file ${path} has mode ${mode.toString(8).padStart(4, "0")}: group and others must have no access to it (chmod 600 ${path})`,
    );
  const text = readFileSync(path, "utf8").replace(/\r?\n$/, "");
  const length = [...text].length;
  if (length < MIN_PASSPHRASE)
    throw new KeyFileError(
      `key file ${path} holds ${length} characters: a passphrase needs at least ${MIN_PASSPHRASE} (for example: openssl rand -base64 32 > ${path})`,
    );
  return text;
}

interface Header {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: 1;
  readonly kdf: "scrypt";
  readonly scrypt: { readonly N: number; readonly r: number; readonly p: number };
  readonly salt: string;
  /** 16 bytes of the scrypt output after the key: a wrong passphrase is told apart from a damaged file. */
  readonly keyCheck: string;
  readonly cipher: "aes-256-gcm";
  readonly chunkSize: number;
  readonly noncePrefix: string;
}

function derive(passphrase: string, salt: Buffer, p: Header["scrypt"]): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      passphrase,
      salt,
      48,
      { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

const nonce = (prefix: Buffer, index: number, last: boolean) => {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0);
  n.writeUInt32BE(index, PREFIX);
  n[11] = last ? 1 : 0;
  return n;
};

/** Reads from `source` until `buffered` holds `n` bytes (or the source ends). */
class Reader {
  private buffered: Buffer[] = [];
  private length = 0;
  done = false;
  constructor(private readonly source: AsyncIterator<Buffer>) {}
  get available() {
    return this.length;
  }
  async fill(n: number): Promise<void> {
    while (this.length < n && !this.done) {
      const r = await this.source.next();
      if (r.done) this.done = true;
      else {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        this.buffered.push(b);
        this.length += b.length;
      }
    }
  }
  take(n: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0] : Buffer.concat(this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

/** Encrypts `source` into the backup format. Options are for tests (a cheaper scrypt, smaller chunks). */
export async function* encrypt(
  source: AsyncIterable<Buffer>,
  passphrase: string,
  opts: { scrypt?: Header["scrypt"]; chunkSize?: number } = {},
): AsyncGenerator<Buffer> {
  const params = opts.scrypt ?? DEFAULT_SCRYPT;
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
  const salt = randomBytes(16);
  const prefix = randomBytes(PREFIX);
  const derived = await derive(passphrase, salt, params);
  const key = derived.subarray(0, 32);
  const header: Header = {
    format: BACKUP_FORMAT,
    version: 1,
    kdf: "scrypt",
    scrypt: { N: params.N, r: params.r, p: params.p },
    salt: salt.toString("base64"),
    keyCheck: derived.subarray(32, 48).toString("base64"),
    cipher: "aes-256-gcm",
    chunkSize,
    noncePrefix: prefix.toString("base64"),
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  const aad = Buffer.concat([MAGIC, length, json]);
  yield aad;
  let index = 0;
  const seal = (plain: Buffer, last: boolean) => {
    const c = createCipheriv("aes-256-gcm", key, nonce(prefix, index++, last));
    c.setAAD(aad);
    return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  };
  const reader = new Reader(source[Symbol.asyncIterator]());
  for (;;) {
    // A full chunk is sealed as not-last only when more data follows it.
    await reader.fill(chunkSize + 1);
    if (reader.available > chunkSize) yield seal(reader.take(chunkSize), false);
    else {
      yield seal(reader.take(reader.available), true);
      return;
    }
  }
}

function parseHeader(json: Buffer): Header {
  let h: Header;
  try {
    h = JSON.parse(json.toString("utf8")) as Header;
  } catch {
    throw new BackupError("its header is damaged (not JSON)");
  }
  const pow2 = (n: unknown) =>
    typeof n === "number" && Number.isInteger(n) && n >= 2 && n <= 2 ** 22 && (n & (n - 1)) === 0;
  const ok =
    h &&
    h.format === BACKUP_FORMAT &&
    h.version === 1 &&
    h.kdf === "scrypt" &&
    h.cipher === "aes-256-gcm" &&
    h.scrypt &&
    pow2(h.scrypt.N) &&
    Number.isInteger(h.scrypt.r) &&
    h.scrypt.r >= 1 &&
    h.scrypt.r <= 32 &&
    Number.isInteger(h.scrypt.p) &&
    h.scrypt.p >= 1 &&
    h.scrypt.p <= 16 &&
    Number.isInteger(h.chunkSize) &&
    h.chunkSize >= 16 &&
    h.chunkSize <= 16 * 1024 * 1024 &&
    typeof h.salt === "string" &&
    Buffer.from(h.salt, "base64").length === 16 &&
    typeof h.keyCheck === "string" &&
    Buffer.from(h.keyCheck, "base64").length === 16 &&
    typeof h.noncePrefix === "string" &&
    Buffer.from(h.noncePrefix, "base64").length === PREFIX;
  if (!ok) throw new BackupError("its header is damaged or of an unknown version");
  return h;
}

/**
 * Decrypts a backup read from `source`, yielding each chunk's plaintext once it authenticated. Throws BackupError
 * with what is wrong: not a backup, wrong passphrase, a damaged or reordered chunk, a cut-off file.
 */
export async function* decrypt(source: AsyncIterable<Buffer>, passphrase: string): AsyncGenerator<Buffer> {
  const reader = new Reader(source[Symbol.asyncIterator]());
  await reader.fill(MAGIC.length + 4);
  if (reader.available < MAGIC.length + 4 || !reader.take(MAGIC.length).equals(MAGIC))
    throw new BackupError(
      `it is not a backup of this tool (it does not start with ${MAGIC.toString("latin1")})`,
    );
  const lengthBytes = reader.take(4);
  const length = lengthBytes.readUInt32BE(0);
  if (length === 0 || length > MAX_HEADER) throw new BackupError("its header is damaged (length)");
  await reader.fill(length);
  if (reader.available < length) throw new BackupError("it is cut short inside its header");
  const json = reader.take(length);
  const header = parseHeader(json);
  const aad = Buffer.concat([MAGIC, lengthBytes, json]);
  const derived = await derive(passphrase, Buffer.from(header.salt, "base64"), header.scrypt);
  if (!timingSafeEqual(derived.subarray(32, 48), Buffer.from(header.keyCheck, "base64")))
    throw new BackupError(
      "the passphrase in the key file is not the one this backup was made with (or the file's header is damaged)",
    );
  const key = derived.subarray(0, 32);
  const prefix = Buffer.from(header.noncePrefix, "base64");
  const sealed = header.chunkSize + TAG;
  const open = (data: Buffer, index: number, last: boolean): Buffer | undefined => {
    const d = createDecipheriv("aes-256-gcm", key, nonce(prefix, index, last));
    d.setAAD(aad);
    d.setAuthTag(data.subarray(data.length - TAG));
    try {
      return Buffer.concat([d.update(data.subarray(0, data.length - TAG)), d.final()]);
    } catch {
      return undefined;
    }
  };
  const damaged = (index: number, last = false) =>
    new BackupError(
      `chunk ${index} (from byte ${aad.length + index * sealed} of the file) failed authentication: the file is ${last ? "damaged or cut short" : "damaged, or its chunks were reordered"}`,
    );
  let index = 0;
  for (;;) {
    await reader.fill(sealed + 1);
    if (reader.available > sealed) {
      const plain = open(reader.take(sealed), index, false);
      if (!plain) throw damaged(index);
      index++;
      yield plain;
      continue;
    }
    // The rest is the last chunk.
    if (reader.available < TAG)
      throw new BackupError(
        `it is cut short: its last chunk is missing after ${index} chunks (a truncated file)`,
      );
    const data = reader.take(reader.available);
    const plain = open(data, index, true);
    if (plain) {
      yield plain;
      return;
    }
    if (data.length === sealed && open(data, index, false))
      throw new BackupError(
        `it is cut short after ${index + 1} chunks, before its last one (a truncated file)`,
      );
    throw damaged(index, true);
  }
}

/** Async iteration over a list of buffers (tests, and a file read in one piece). */
export async function* fromBuffers(buffers: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const b of buffers) yield b;
}
