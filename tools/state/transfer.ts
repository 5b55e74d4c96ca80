// The three ways an archive travels, each streamed, never whole in memory and never as plaintext on disk:
//   server -> encrypted file (backup), encrypted file -> server (restore), server -> this machine -> server (move).
// Every byte passes the TarScanner, which counts what is carried and reads the manifest. The receiving script
// (core/state/restore.ts) places nothing unless the stream ends with the commit member, which is appended only
// after the last chunk authenticated (restore) or the archive script on the old server exited 0 (move): any
// failure on the way leaves the receiving server as it was.
import { createReadStream } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import type { Writable } from "node:stream";
import type { RelayConfig } from "../../core/config";
import type { Plan } from "../../core/plan/types";
import {
  archiveScript,
  orderedParts,
  REFUSED_EXIT,
  restoreScript,
  stopMailScript,
  type ArchiveManifest,
  type Part,
} from "../../core/state";
import { PATHS } from "../../core/plan/facts";
import { BackupError, decrypt, encrypt } from "./crypto";
import { lastLine, startRemote, type Remote, type SshTarget } from "./ssh";
import { commitTar, TarError, TarScanner, type PartCounts } from "./tar";

/** A failure of an operation, with a message for the operator (one or a few lines). */
export class TransferError extends Error {}

export interface Carried {
  readonly parts: readonly Part[];
  readonly counts: PartCounts;
  readonly seconds: number;
  /** What the receiving server said it placed (restore, move). */
  readonly serverLine?: string;
  /** The manifest of the archive carried. */
  readonly manifest?: ArchiveManifest;
}

/** Options for tests: a cheaper scrypt and smaller chunks. */
export interface CryptoOptions {
  readonly scrypt?: { N: number; r: number; p: number };
  readonly chunkSize?: number;
}

const where = (t: SshTarget) => `${t.user}@${t.host}`;
const elapsed = (start: number) => (Date.now() - start) / 1000;

/** Writes `buf` to a remote's stdin, waiting while its pipe is full; rejects once the remote closed it. */
function writeTo(remote: Remote, buf: Buffer): Promise<void> {
  const stream = remote.child.stdin;
  if (stream.destroyed || stream.writableEnded) return Promise.reject(new Error("the receiving side closed"));
  if (stream.write(buf)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      stream.off("drain", onDrain);
      stream.off("close", onClose);
      stream.off("error", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("the receiving side closed"));
    stream.on("drain", onDrain);
    stream.on("close", onClose);
    stream.on("error", onClose);
    void remote.done.then(onClose);
  });
}

function endStream(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    stream.end(() => resolve());
    stream.once("error", () => resolve());
    stream.once("close", () => resolve());
  });
}

async function* scanned(source: AsyncIterable<Buffer>, scanner: TarScanner): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    scanner.push(chunk);
    yield chunk;
  }
}

function checkManifest(scanner: TarScanner, config: RelayConfig, what: string): ArchiveManifest {
  if (!scanner.manifest)
    throw new TransferError(
      `${what} is no relay archive: ${scanner.manifestError ?? "it holds no manifest"}`,
    );
  if (scanner.manifest.mailDomain !== config.mailDomain)
    throw new TransferError(
      `${what} is of ${scanner.manifest.mailDomain}, but the stack's relay is ${config.mailDomain}`,
    );
  return scanner.manifest;
}

/** The last thing the restore script said (without its "restore: "), or how it ended. */
const said = (r: { code: number; stderr: string }) =>
  lastLine(r.stderr).replace(/^restore: /, "") || `the restore script exited ${r.code}`;

/** What the receiving server said when it failed; the refusal is passed on whole. */
function receiverFailure(dest: SshTarget, r: { code: number; stderr: string }): TransferError {
  if (r.code === REFUSED_EXIT) return new TransferError(said(r));
  if (r.code === 255)
    return new TransferError(`ssh to ${where(dest)} failed: ${lastLine(r.stderr) || "exit 255"}`);
  return new TransferError(`on ${where(dest)}: ${said(r)}`);
}

/** The archive script's stream from `source`, checked: throws when the script failed. */
async function sourceResult(source: SshTarget, remote: Remote): Promise<void> {
  const r = await remote.done;
  if (r.code === 255)
    throw new TransferError(`ssh to ${where(source)} failed: ${lastLine(r.stderr) || "exit 255"}`);
  if (r.code !== 0)
    throw new TransferError(
      `the archive on ${where(source)} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`,
    );
}

/** `npm run backup`: the archive of `parts` from `source`, encrypted into `out` (via out.tmp, mode 0600). */
export async function backupToFile(opts: {
  source: SshTarget;
  config: RelayConfig;
  parts: readonly Part[];
  manifest: string;
  out: string;
  passphrase: string;
  crypto?: CryptoOptions;
}): Promise<Carried & { fileBytes: number }> {
  const start = Date.now();
  const parts = orderedParts(opts.parts);
  const tmp = `${opts.out}.tmp`;
  const file = await open(tmp, "w", 0o600).catch((e: NodeJS.ErrnoException) => {
    throw new TransferError(`cannot write ${tmp}: ${e.code ?? e.message}`);
  });
  let written = 0;
  let remote: Remote | undefined;
  try {
    await file.chmod(0o600);
    remote = startRemote(opts.source, archiveScript({ config: opts.config, parts, manifest: opts.manifest }));
    remote.child.stdin.end();
    const scanner = new TarScanner();
    for await (const piece of encrypt(scanned(remote.output, scanner), opts.passphrase, opts.crypto)) {
      await file.write(piece);
      written += piece.length;
    }
    await sourceResult(opts.source, remote);
    scanner.end();
    const manifest = checkManifest(scanner, opts.config, `the stream from ${where(opts.source)}`);
    await file.sync();
    await file.close();
    await rename(tmp, opts.out);
    return { parts, counts: scanner.counts, seconds: elapsed(start), fileBytes: written, manifest };
  } catch (e) {
    remote?.child.kill();
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Reads a backup's manifest: decrypts its first chunk(s) only. */
export async function readManifest(path: string, passphrase: string): Promise<ArchiveManifest> {
  const input = createReadStream(path);
  const scanner = new TarScanner();
  try {
    for await (const plain of decrypt(input, passphrase)) {
      scanner.push(plain);
      if (scanner.manifest || scanner.manifestError) break;
    }
  } catch (e) {
    throw e instanceof BackupError ? new TransferError(`${path}: ${e.message}`) : e;
  } finally {
    input.destroy();
  }
  if (!scanner.manifest)
    throw new TransferError(`${path} is no relay archive: ${scanner.manifestError ?? "it is empty"}`);
  return scanner.manifest;
}

/** The parts to restore: the ones asked for (all of the archive's by default), each of which it must hold. */
export function partsToRestore(manifest: ArchiveManifest, asked: readonly Part[] | undefined): Part[] {
  if (asked === undefined) return [...manifest.parts];
  const missing = asked.filter((p) => !manifest.parts.includes(p));
  if (missing.length > 0)
    throw new TransferError(
      `the archive holds no ${missing.join(", ")} (it holds ${manifest.parts.join(", ")}${missing.includes("mailboxes") ? "; backup --mailboxes takes them" : ""})`,
    );
  return orderedParts(asked);
}

/** `npm run restore`: the backup `path` decrypted as it streams into the restore script on `dest`. */
export async function restoreFromFile(opts: {
  dest: SshTarget;
  config: RelayConfig;
  plan: Pick<Plan, "units" | "steps">;
  path: string;
  passphrase: string;
  parts?: readonly Part[];
  force: boolean;
}): Promise<Carried> {
  const start = Date.now();
  const manifest = await readManifest(opts.path, opts.passphrase);
  if (manifest.mailDomain !== opts.config.mailDomain)
    throw new TransferError(
      `${opts.path} is a backup of ${manifest.mailDomain}, but the stack's relay is ${opts.config.mailDomain}`,
    );
  const parts = partsToRestore(manifest, opts.parts);
  const script = restoreScript({ config: opts.config, plan: opts.plan, parts, force: opts.force });
  const remote = startRemote(opts.dest, script, { collectStdout: true });
  const input = createReadStream(opts.path, { highWaterMark: 1024 * 1024 });
  const scanner = new TarScanner();
  try {
    for await (const plain of decrypt(input, opts.passphrase)) {
      scanner.push(plain);
      await writeTo(remote, plain);
    }
    scanner.end();
    await writeTo(remote, commitTar(Math.floor(Date.now() / 1000)));
    await endStream(remote.child.stdin);
  } catch (e) {
    // No commit member: the server places nothing. Its own message, when it stopped first, says more.
    input.destroy();
    remote.child.stdin.destroy();
    const r = await remote.done;
    const ours = e instanceof BackupError || e instanceof TarError;
    if (r.code !== 0 && !ours) throw receiverFailure(opts.dest, r);
    const why = ours ? `${opts.path}: ${(e as Error).message}` : (e as Error).message;
    throw new TransferError(`${why}; on ${where(opts.dest)}: ${said(r)}`);
  }
  return received(opts.dest, remote, { parts, scanner, start, manifest });
}

/** `npm run move`: `parts` from `source` straight into the restore script on `dest`. */
export async function copyBetween(opts: {
  source: SshTarget;
  dest: SshTarget;
  config: RelayConfig;
  plan: Pick<Plan, "units" | "steps">;
  parts: readonly Part[];
  manifest: string;
}): Promise<Carried> {
  const start = Date.now();
  const parts = orderedParts(opts.parts);
  const dest = startRemote(
    opts.dest,
    restoreScript({ config: opts.config, plan: opts.plan, parts, force: false }),
    { collectStdout: true },
  );
  const source = startRemote(
    opts.source,
    archiveScript({ config: opts.config, parts, manifest: opts.manifest }),
  );
  source.child.stdin.end();
  const scanner = new TarScanner();
  let manifest: ArchiveManifest;
  try {
    for await (const chunk of source.output as AsyncIterable<Buffer>) {
      scanner.push(chunk);
      await writeTo(dest, chunk);
    }
    await sourceResult(opts.source, source);
    scanner.end();
    manifest = checkManifest(scanner, opts.config, `the stream from ${where(opts.source)}`);
    await writeTo(dest, commitTar(Math.floor(Date.now() / 1000)));
    await endStream(dest.child.stdin);
  } catch (e) {
    source.child.kill();
    dest.child.stdin.destroy();
    const r = await dest.done;
    if (r.code !== 0 && !(e instanceof TransferError || e instanceof TarError))
      throw receiverFailure(opts.dest, r);
    throw new TransferError(`${(e as Error).message}; on ${where(opts.dest)}: ${said(r)}`);
  }
  return received(opts.dest, dest, { parts, scanner, start, manifest });
}

/** What a restore script that read the whole stream reports, once it ended well. */
async function received(
  target: SshTarget,
  remote: Remote,
  stream: { parts: Part[]; scanner: TarScanner; start: number; manifest: ArchiveManifest },
): Promise<Carried> {
  const r = await remote.done;
  if (r.code !== 0) throw receiverFailure(target, r);
  return {
    parts: stream.parts,
    counts: stream.scanner.counts,
    seconds: elapsed(stream.start),
    serverLine: lastLine(remote.stdout()),
    manifest: stream.manifest,
  };
}

/** The stop-mail script on `target`: its summary line and whether local mail was left. */
export async function stopMail(opts: {
  target: SshTarget;
  config: RelayConfig;
  timeoutSeconds: number;
}): Promise<{ ok: boolean; line: string; seconds: number }> {
  const start = Date.now();
  const remote = startRemote(
    opts.target,
    stopMailScript({ config: opts.config, timeoutSeconds: opts.timeoutSeconds }),
    {
      collectStdout: true,
    },
  );
  remote.child.stdin.end();
  const r = await remote.done;
  const line = lastLine(remote.stdout());
  if (r.code === 255)
    throw new TransferError(`ssh to ${where(opts.target)} failed: ${lastLine(r.stderr) || "exit 255"}`);
  if (r.code !== 0 && line === "")
    throw new TransferError(
      `stop-mail on ${where(opts.target)} failed: ${lastLine(r.stderr) || `exit ${r.code}`}`,
    );
  return { ok: r.code === 0, line, seconds: elapsed(start) };
}

/** The archive member of the DKIM private key. */
export const DKIM_KEY_MEMBER = `keys/root/${PATHS.dkimPrivateKey.replace(/^\//, "")}`;

/** The DKIM private key (PEM) in the backup `path`. */
export async function dkimKeyFromFile(path: string, passphrase: string): Promise<string> {
  const input = createReadStream(path, { highWaterMark: 1024 * 1024 });
  const scanner = new TarScanner(DKIM_KEY_MEMBER);
  try {
    for await (const plain of decrypt(input, passphrase)) {
      scanner.push(plain);
      if (scanner.manifestError) break;
      if (scanner.manifest && !scanner.manifest.parts.includes("keys")) break;
      if (scanner.captured) break;
    }
  } catch (e) {
    throw e instanceof BackupError ? new TransferError(`${path}: ${e.message}`) : e;
  } finally {
    input.destroy();
  }
  if (!scanner.manifest)
    throw new TransferError(`${path} is no relay archive: ${scanner.manifestError ?? "it is empty"}`);
  if (!scanner.manifest.parts.includes("keys"))
    throw new TransferError(`${path} holds no keys (it holds ${scanner.manifest.parts.join(", ")})`);
  if (!scanner.captured)
    throw new TransferError(`${path} holds no DKIM key (${PATHS.dkimPrivateKey} was missing on the server)`);
  return scanner.captured.toString("utf8");
}
