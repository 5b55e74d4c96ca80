// Quota and expiry on the real server: a full mailbox refuses new mail, and the daily expiry job (run now with
// systemctl) deletes old messages and idle addresses and trims an over-full mailbox, sparing what is not due.
// Ages are made by setting file times, the way the job itself reads them.
import * as openpgp from "openpgp";
import { parseSizeMb } from "../../../core/config";
import { waitFor } from "../proc";
import { imapLogin, newCredentials, submit, type Account } from "./clients";
import { encryptedMessage, MAIL, receive } from "./mail";
import type { E2eTest, SuiteContext } from "./types";

const NEEDS = [...MAIL, "service:chatmail-expire.timer"];
const DAY_S = 24 * 3600;
const QUOTA_DEADLINE_MS = 30_000;

const mailbox = (ctx: SuiteContext, account: Account) => `${ctx.first.config.mailboxesDir}/${account.addr}`;

/** Delivers one encrypted message from a fresh sender to `to` and returns the path of its maildir file. */
async function deliver(ctx: SuiteContext, to: Account): Promise<string> {
  const from = newCredentials(ctx);
  const { publicKey } = await openpgp.generateKey({
    type: "curve25519",
    userIDs: [{ email: to.addr }],
    format: "object",
  });
  const { messageId, raw } = await encryptedMessage(from, to.addr, ctx.domain, "expiry test", publicKey);
  await submit(ctx, from, 465, { from: from.addr, to: [to.addr] }, raw);
  await receive(ctx, to, messageId);
  // Stored gzip-compressed (Dovecot zlib_save), hence zgrep.
  const path = await ctx.ssh.out(
    `find ${mailbox(ctx, to)} -type f \\( -path '*/cur/*' -o -path '*/new/*' \\) | while read -r f; do if zgrep -qF '${messageId}' "$f"; then echo "$f"; fi; done`,
  );
  if (path === "" || path.includes("\n"))
    throw new Error(`expected one maildir file with ${messageId}, found: ${JSON.stringify(path)}`);
  return path;
}

const ageBy = (ctx: SuiteContext, path: string, days: number) =>
  ctx.ssh.exec(`touch -m -d "@$(( $(date +%s) - ${Math.ceil(days * DAY_S)} ))" '${path}'`);

const exists = async (ctx: SuiteContext, path: string) =>
  (await ctx.ssh.out(`test -e '${path}' && echo yes || echo no`)) === "yes";

async function runExpiry(ctx: SuiteContext) {
  // Type=oneshot: `systemctl start` returns when the job has finished, with its exit status.
  await ctx.ssh.exec("systemctl start chatmail-expire.service");
}

/** Adds a sparse file of `mb` megabytes as a message and lets Dovecot recount the quota. */
async function inflate(ctx: SuiteContext, account: Account, mb: number, ageDays: number): Promise<string> {
  const bytes = mb * 1024 * 1024;
  const path = `${mailbox(ctx, account)}/cur/1000000000.M1P1.inflate,S=${bytes},W=${bytes}:2,S`;
  await ctx.ssh.exec(
    `install -d -o vmail -g vmail '${mailbox(ctx, account)}/cur' && truncate -s ${bytes} '${path}' && ` +
      `chown vmail:vmail '${path}' && doveadm quota recalc -u ${account.addr}`,
  );
  await ageBy(ctx, path, ageDays);
  return path;
}

export const expiry: E2eTest[] = [
  {
    name: "the expiry job deletes messages older than deleteMailsAfter and keeps newer ones",
    needs: NEEDS,
    async run(ctx) {
      const owner = newCredentials(ctx);
      await (await imapLogin(ctx, owner)).logout();
      const old = await deliver(ctx, owner);
      const recent = await deliver(ctx, owner);
      await ageBy(ctx, old, ctx.first.config.deleteMailsAfter + 1);
      await ageBy(ctx, recent, ctx.first.config.deleteMailsAfter - 1);
      await runExpiry(ctx);
      if (await exists(ctx, old))
        throw new Error(`a message ${ctx.first.config.deleteMailsAfter + 1} days old is still there`);
      if (!(await exists(ctx, recent)))
        throw new Error(`a message ${ctx.first.config.deleteMailsAfter - 1} days old was deleted`);
    },
  },
  {
    name: "the expiry job removes addresses idle for deleteInactiveUsersAfter and keeps active ones",
    needs: NEEDS,
    async run(ctx) {
      const idle = newCredentials(ctx);
      const active = newCredentials(ctx);
      for (const a of [idle, active]) await (await imapLogin(ctx, a)).logout();
      // The last login is the password file's mtime (lastlogin keeps it at the day of the last login).
      await ageBy(ctx, `${mailbox(ctx, idle)}/password`, ctx.first.config.deleteInactiveUsersAfter + 1);
      await runExpiry(ctx);
      if (await exists(ctx, mailbox(ctx, idle)))
        throw new Error(`${idle.addr}, idle for longer than deleteInactiveUsersAfter, still exists`);
      if (!(await exists(ctx, mailbox(ctx, active))))
        throw new Error(`the active address ${active.addr} was removed`);
    },
  },
  {
    name: "a mailbox over maxMailboxSize refuses new mail with a quota error",
    needs: NEEDS,
    async run(ctx) {
      const full = newCredentials(ctx);
      await (await imapLogin(ctx, full)).logout();
      const sizeMb = parseSizeMb(ctx.first.config.maxMailboxSize);
      const filler = await inflate(ctx, full, sizeMb + 1, 0);
      try {
        const from = newCredentials(ctx);
        const { publicKey } = await openpgp.generateKey({
          type: "curve25519",
          userIDs: [{ email: full.addr }],
          format: "object",
        });
        const { raw } = await encryptedMessage(from, full.addr, ctx.domain, "one too many", publicKey);
        await submit(ctx, from, 465, { from: from.addr, to: [full.addr] }, raw);
        await waitFor(
          `a Dovecot quota refusal for ${full.addr}`,
          QUOTA_DEADLINE_MS,
          async () => {
            const lines = await ctx.ssh.out(
              `journalctl -b --no-pager -q -u dovecot.service -g 'quota' -o cat | grep -F '${full.addr}' || true`,
            );
            return lines === "" ? undefined : lines;
          },
          500,
        );
      } finally {
        await ctx.ssh.exec(`rm -f '${filler}'; doveadm quota recalc -u ${full.addr}`, { allowFail: true });
      }
    },
  },
  {
    name: "the expiry job trims an over-full mailbox oldest first, sparing messages from the last day",
    needs: NEEDS,
    async run(ctx) {
      const owner = newCredentials(ctx);
      await (await imapLogin(ctx, owner)).logout();
      const recent = await deliver(ctx, owner);
      const sizeMb = parseSizeMb(ctx.first.config.maxMailboxSize);
      const filler = await inflate(ctx, owner, sizeMb + 1, 2);
      await runExpiry(ctx);
      if (await exists(ctx, filler))
        throw new Error(`a ${sizeMb + 1} MB message from two days ago survived the trim of a full mailbox`);
      if (!(await exists(ctx, recent))) throw new Error("the trim removed a message delivered today");
    },
  },
];
