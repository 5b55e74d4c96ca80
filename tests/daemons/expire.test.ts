import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { expireToTarget, parseDovecotFilename, quotaExpire, runExpire } from "../../daemons/expire";
import { statMailbox } from "../../daemons/expire/mailbox";
import { DOMAIN, tempRelay, type TempRelay } from "./helpers";

const DAY = 86400;
const NOW = 1_800_000_000;
const relays: TempRelay[] = [];
afterEach(() => {
  for (const r of relays.splice(0)) r.cleanup();
});

function relay(ini: Record<string, string> = {}) {
  const r = tempRelay(ini);
  relays.push(r);
  return r;
}

/** Writes a file of `size` bytes with mtime `age` days before NOW. */
function file(path: string, size: number, ageDays: number): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, Buffer.alloc(size, 97));
  const t = NOW - ageDays * DAY;
  utimesSync(path, t, t);
  return path;
}

function mailbox(r: TempRelay, name: string, lastLoginAgeDays: number | undefined): string {
  const dir = join(r.config.mailboxesDir, name);
  mkdirSync(dir, { recursive: true });
  if (lastLoginAgeDays !== undefined) file(join(dir, "password"), 20, lastLoginAgeDays);
  return dir;
}

describe("runExpire", () => {
  it("removes mailboxes inactive for deleteInactiveUsersAfter days and keeps recent ones", async () => {
    const r = relay();
    for (let i = 0; i < 150; i++) {
      const dir = mailbox(r, `oldold${String(i).padStart(3, "0")}@${DOMAIN}`, 90 + 1 / DAY);
      mkdirSync(join(dir, "cur", "something"), { recursive: true });
    }
    for (let i = 0; i < 5; i++) mailbox(r, `newnew${i}xx@${DOMAIN}`, 1);
    const summary = await runExpire(r.config, { dryRun: false, now: NOW });
    const left = readdirSync(r.config.mailboxesDir);
    expect(left.filter((n) => n.startsWith("old"))).toEqual([]);
    expect(left.filter((n) => n.startsWith("new"))).toHaveLength(5);
    expect(summary.deletedMailboxes).toBe(150);
  });

  it("removes old mail, seen large mail, and maildirsize; keeps unseen large and recent mail", async () => {
    const r = relay();
    const dir = mailbox(r, `user1234x@${DOMAIN}`, 1);
    const old = [
      file(join(dir, "cur", "msg_old"), 100, 21),
      file(join(dir, "new", "msg_old2"), 100, 21),
      file(join(dir, ".DeltaChat", "cur", "msg_old3"), 100, 21),
    ];
    const largeSeen = file(join(dir, "cur", "msg_old_large1"), 200_001, 8);
    const largeUnseen = file(join(dir, "new", "msg_old_large2"), 200_001, 8);
    const stay = file(join(dir, "cur", "shouldstay"), 100, 1);
    file(join(dir, "maildirsize"), 10, 0);
    const lines: string[] = [];
    await runExpire(r.config, { dryRun: false, now: NOW, out: (l) => lines.push(l) });
    for (const p of [...old, largeSeen]) expect(existsSync(p)).toBe(false);
    expect(existsSync(largeUnseen)).toBe(true);
    expect(existsSync(stay)).toBe(true);
    expect(existsSync(join(dir, "maildirsize"))).toBe(false);
    expect(lines.some((l) => l.includes("shouldstay"))).toBe(false);
    expect(lines.some((l) => l.startsWith("removing") && l.endsWith("msg_old_large1"))).toBe(true);
    expect(lines.at(-1)).toMatch(
      /^Removed 0 out of 1 mailboxes and 4 out of 6 files in existing mailboxes in \d+\.\d\d seconds$/,
    );
  });

  it("changes nothing in a dry run, quota trimming included", async () => {
    const r = relay({ max_mailbox_size: "1M" });
    mailbox(r, `inactive1@${DOMAIN}`, 100);
    const dir = mailbox(r, `user1234x@${DOMAIN}`, 1);
    const old = file(join(dir, "cur", "msg_old"), 100, 30);
    const big = file(join(dir, "cur", `${NOW - 10 * DAY}.M1P1.host,S=2000000,W=2000100:2,S`), 100, 10);
    file(join(dir, "maildirsize"), 10, 0);
    const lines: string[] = [];
    const summary = await runExpire(r.config, { dryRun: true, now: NOW, out: (l) => lines.push(l) });
    expect(summary).toMatchObject({ deletedMailboxes: 1, deletedFiles: 2 });
    for (const p of [old, big, join(dir, "maildirsize"), join(r.config.mailboxesDir, `inactive1@${DOMAIN}`)])
      expect(existsSync(p)).toBe(true);
    expect(lines.at(-1)).toContain("[dry run]");
  });

  it("removes an empty directory without password and skips a non-empty one", async () => {
    const r = relay();
    const empty = mailbox(r, `empty1234@${DOMAIN}`, undefined);
    const full = mailbox(r, `full12345@${DOMAIN}`, undefined);
    file(join(full, "cur", "x"), 1, 0);
    const lines: string[] = [];
    await runExpire(r.config, { dryRun: false, now: NOW, out: (l) => lines.push(l) });
    expect(existsSync(empty)).toBe(false);
    expect(existsSync(full)).toBe(true);
    expect(lines.some((l) => l.includes("doesn't have last_login but isn't empty"))).toBe(true);
  });

  it("reports a missing mailboxes dir and changes nothing", async () => {
    const r = relay();
    const summary = await runExpire(
      { ...r.config, mailboxesDir: join(r.dir, "nope") },
      { dryRun: false, now: NOW },
    );
    expect(summary.allMailboxes).toBe(0);
  });
});

describe("expireToTarget", () => {
  it("deletes oldest first by the S= size down to the target and never mail of the last 24 hours", async () => {
    const r = relay();
    const dir = mailbox(r, `user1234x@${DOMAIN}`, 1);
    const mib = 1024 * 1024;
    const names = [NOW - 10 * DAY, NOW - 5 * DAY, NOW].map((t, i) =>
      file(join(dir, "cur", `${t}.M${i}P1.host,S=${mib},W=${mib}:2,S`), 100, 0),
    );
    const removed = await expireToTarget(dir, mib, NOW, false);
    expect(removed).toEqual(names.slice(0, 2));
    expect(existsSync(names[2])).toBe(true);
    // Only recent mail left over the target: nothing more goes.
    file(join(dir, "new", `${NOW - 3600}.M9P1.host,S=${mib},W=${mib}`), 100, 0);
    expect(await expireToTarget(dir, 0, NOW, false)).toEqual([]);
  });

  it("parses delivery time and size from Dovecot file names", () => {
    expect(parseDovecotFilename("cur/1775324677.M448978P3029757.exam,S=3235,W=3305:2,S")).toEqual({
      mtime: 1775324677,
      quotaSize: 3235,
    });
    expect(parseDovecotFilename("cur/msg_without_size")).toBeUndefined();
  });
});

describe("quotaExpire", () => {
  it("trims a mailbox to the target and removes maildirsize", async () => {
    const r = relay();
    const dir = mailbox(r, `user1234x@${DOMAIN}`, 1);
    const now = Date.now() / 1000;
    file(join(dir, "cur", `${Math.trunc(now - 3 * DAY)}.M1P1.host,S=3000000,W=1:2,S`), 10, 0);
    file(join(dir, "maildirsize"), 10, 0);
    expect(await quotaExpire(1, dir, now)).toBe(1);
    expect(existsSync(join(dir, "maildirsize"))).toBe(false);
  });
});

describe("statMailbox", () => {
  it("counts messages in every cur/new/tmp folder and lists other files largest first", async () => {
    const r = relay();
    const dir = mailbox(r, `user1234x@${DOMAIN}`, 1);
    file(join(dir, "cur", "a"), 500, 0);
    file(join(dir, "new", "b"), 600, 0);
    file(join(dir, ".DeltaChat", "cur", "c"), 1, 0);
    file(join(dir, ".DeltaChat", "new", "d"), 1, 0);
    file(join(dir, "large-extra"), 1000, 0);
    file(join(dir, "garbagedir", "bimbum"), 3, 0);
    const stat = await statMailbox(dir);
    expect(stat.messages.map((m) => m.size).sort((a, b) => a - b)).toEqual([1, 1, 500, 600]);
    expect(stat.extraFiles.map((f) => f.path.split("/").pop())).toEqual([
      "large-extra",
      "password",
      "bimbum",
    ]);
    expect(stat.lastLogin).toBe(NOW - DAY);
  });
});
