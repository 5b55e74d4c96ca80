// The tool's view into the archive stream as it passes: a streaming tar reader that counts what each part holds,
// reads the manifest (the first member), and can keep one member's content (the DKIM key); and the writer of the
// commit member, the small tar archive the tool appends once the whole stream checked out (core/state/restore.ts
// places nothing without it). Reads GNU and ustar headers, GNU long names and pax paths, and archives one after
// the other (zero blocks between them are skipped, as tar --ignore-zeros does).
import {
  COMMIT_MEMBER,
  MANIFEST_MEMBER,
  memberInfo,
  parseManifest,
  PARTS,
  type ArchiveManifest,
  type Part,
} from "../../core/state";

const BLOCK = 512;

export class TarError extends Error {}

export interface PartCount {
  /** Files, links and other non-folder entries. */
  files: number;
  /** Bytes of file contents. */
  bytes: number;
  /** Account folders (addresses) the part has entries of. */
  readonly accounts: Set<string>;
}

export type PartCounts = Record<Part, PartCount>;

export const emptyCounts = (): PartCounts =>
  Object.fromEntries(
    PARTS.map((p) => [p, { files: 0, bytes: 0, accounts: new Set<string>() }]),
  ) as PartCounts;

const cString = (b: Buffer, start: number, len: number) => {
  const s = b.subarray(start, start + len);
  const end = s.indexOf(0);
  return s.subarray(0, end < 0 ? s.length : end).toString("utf8");
};

/** A numeric header field: octal text, or GNU's base-256 (first byte 0x80) for large values. */
function numField(b: Buffer, start: number, len: number): number {
  if (b[start] & 0x80) {
    let v = b[start] & 0x7f;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i];
    return v;
  }
  const text = cString(b, start, len).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text))
    throw new TarError(`not a tar stream (a header field reads ${JSON.stringify(text)})`);
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return numField(h, 148, 8) === sum;
}

/** The `path` record of a pax extended header, if any. */
function paxPath(data: Buffer): string | undefined {
  let off = 0;
  let path: string | undefined;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) break;
    const len = Number(data.subarray(off, space).toString("latin1"));
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, off + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (record.slice(0, eq) === "path") path = record.slice(eq + 1);
    off += len;
  }
  return path;
}

interface Member {
  readonly name: string;
  readonly type: string;
  readonly size: number;
}

/**
 * Reads a tar stream pushed in pieces. `capture` names a member whose content is kept (`captured`).
 * Throws TarError on a stream that is not tar.
 */
export class TarScanner {
  readonly counts = emptyCounts();
  manifest?: ArchiveManifest;
  /** Why the manifest could not be read, when it could not. */
  manifestError?: string;
  /** The commit member was seen. */
  committed = false;
  captured?: Buffer;
  private readonly header = Buffer.alloc(BLOCK);
  private headerLen = 0;
  private member?: Member;
  private left = 0;
  private collect?: Buffer[];
  private longName?: string;
  private paxName?: string;
  private members = 0;

  constructor(private readonly capture?: string) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.member) {
        const take = Math.min(this.left, chunk.length - off);
        if (this.collect) this.collect.push(chunk.subarray(off, off + take));
        off += take;
        this.left -= take;
        if (this.left === 0) this.endMember();
        continue;
      }
      const take = Math.min(BLOCK - this.headerLen, chunk.length - off);
      chunk.copy(this.header, this.headerLen, off, off + take);
      this.headerLen += take;
      off += take;
      if (this.headerLen === BLOCK) {
        this.headerLen = 0;
        this.onHeader();
      }
    }
  }

  /** The stream is over: throws when it ended inside a member. */
  end(): void {
    if (this.member || this.headerLen !== 0) throw new TarError("the tar stream ends inside a member");
    if (this.members === 0) throw new TarError("the stream holds no archive");
  }

  private onHeader(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) throw new TarError("not a tar stream (a header's checksum is wrong)");
    const type = String.fromCharCode(h[156] || 0x30);
    const size = numField(h, 124, 12);
    let name = cString(h, 0, 100);
    if (cString(h, 257, 6) === "ustar") {
      const prefix = cString(h, 345, 155);
      if (prefix !== "") name = `${prefix}/${name}`;
    }
    if (this.longName !== undefined) name = this.longName;
    if (this.paxName !== undefined) name = this.paxName;
    const meta = type === "L" || type === "K" || type === "x" || type === "g";
    if (!meta) {
      this.longName = undefined;
      this.paxName = undefined;
    }
    this.member = { name, type, size };
    this.left = Math.ceil(size / BLOCK) * BLOCK;
    const keep =
      meta ||
      (this.members === 0 && name === MANIFEST_MEMBER) ||
      (this.capture !== undefined && name === this.capture);
    this.collect = keep ? [] : undefined;
    if (this.left === 0) this.endMember();
  }

  private endMember(): void {
    const m = this.member!;
    const data = this.collect ? Buffer.concat(this.collect).subarray(0, m.size) : undefined;
    this.member = undefined;
    this.collect = undefined;
    if (m.type === "L") this.longName = cString(data!, 0, data!.length);
    else if (m.type === "x") this.paxName = paxPath(data!);
    if (m.type === "L" || m.type === "K" || m.type === "x" || m.type === "g") return;
    this.count(m, data);
    this.members++;
  }

  private count(m: Member, data: Buffer | undefined): void {
    const info = memberInfo(m.name);
    if (this.members === 0) {
      if (info.kind !== "manifest")
        this.manifestError = `it does not start with its manifest (${MANIFEST_MEMBER})`;
      else {
        try {
          this.manifest = parseManifest(data!.toString("utf8"));
        } catch (e) {
          this.manifestError = (e as Error).message;
        }
      }
      return;
    }
    if (info.kind === "commit") this.committed = true;
    if (this.capture !== undefined && m.name === this.capture && data) this.captured = data;
    if (info.kind !== "state") return;
    const c = this.counts[info.part];
    if (info.account !== undefined) c.accounts.add(info.account);
    if (m.type === "5") return;
    c.files++;
    if (m.type === "0" || m.type === "7") c.bytes += m.size;
  }
}

function octal(h: Buffer, start: number, len: number, value: number): void {
  h.write(value.toString(8).padStart(len - 1, "0") + "\0", start, len, "latin1");
}

/** One tar archive holding one small file, as GNU tar reads it. */
export function singleFileTar(name: string, content: Buffer, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, content.length);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156);
  h.write("0", 156, "latin1");
  h.write("ustar\0", 257, "latin1");
  h.write("00", 263, "latin1");
  h.write("root", 265, "latin1");
  h.write("root", 297, "latin1");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "latin1");
  const padded = Buffer.alloc(Math.ceil(content.length / BLOCK) * BLOCK);
  content.copy(padded);
  return Buffer.concat([h, padded, Buffer.alloc(2 * BLOCK)]);
}

/** The commit member: the stream before it is whole (every chunk authenticated, the archive script succeeded). */
export const commitTar = (mtime: number) => singleFileTar(COMMIT_MEMBER, Buffer.from("complete\n"), mtime);
