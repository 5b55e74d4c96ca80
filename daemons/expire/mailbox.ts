// A mailbox directory as the expiry job and the report see it (upstream expire.py MailboxStat): message files in
// any cur/new/tmp folder, other files as "extra", and the last login from the password file's mtime.
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

export interface FileEntry {
  readonly path: string;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly size: number;
}

export interface MailboxStat {
  readonly dir: string;
  readonly name: string;
  readonly messages: FileEntry[];
  /** Non-message files, largest first. */
  readonly extraFiles: FileEntry[];
  /** mtime of `password`, or undefined when there is none. */
  readonly lastLogin: number | undefined;
}

const MESSAGE_DIRS = new Set(["cur", "new", "tmp"]);

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return []; // vanished while scanning
  }
}

async function statFile(path: string): Promise<FileEntry | undefined> {
  try {
    const s = await lstat(path);
    return s.isFile() ? { path, mtime: s.mtimeMs / 1000, size: s.size } : undefined;
  } catch {
    return undefined;
  }
}

export async function statMailbox(dir: string): Promise<MailboxStat> {
  const messages: FileEntry[] = [];
  const extraFiles: FileEntry[] = [];
  let lastLogin: number | undefined;
  const walk = async (d: string): Promise<void> => {
    for (const name of await entries(d)) {
      const path = join(d, name);
      let s;
      try {
        s = await lstat(path);
      } catch {
        continue;
      }
      if (s.isDirectory()) {
        if (MESSAGE_DIRS.has(name)) {
          // Sub-directories inside cur/new/tmp are not messages and are not walked.
          for (const m of await entries(path)) {
            const f = await statFile(join(path, m));
            if (f) messages.push(f);
          }
        } else await walk(path);
      } else if (s.isFile()) {
        const f = { path, mtime: s.mtimeMs / 1000, size: s.size };
        extraFiles.push(f);
        if (d === dir && name === "password") lastLogin = f.mtime;
      }
    }
  };
  await walk(dir);
  extraFiles.sort((a, b) => b.size - a.size);
  return { dir, name: dir.split("/").pop() as string, messages, extraFiles, lastLogin };
}

/** Mailbox directories (names with `@`) under mailboxesDir, at most `maxnum`. Undefined: the dir is missing. */
export async function listMailboxDirs(mailboxesDir: string, maxnum?: number): Promise<string[] | undefined> {
  let names: string[];
  try {
    names = await readdir(mailboxesDir);
  } catch {
    return undefined;
  }
  return names
    .sort()
    .slice(0, maxnum)
    .filter((n) => n.includes("@"))
    .map((n) => join(mailboxesDir, n));
}
