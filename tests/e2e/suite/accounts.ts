// Accounts: /new hands out credentials, the first login creates the address, bad passwords are refused, and the
// IMAP server announces the chatmail extensions.
import { https, imapLogin, imapLoginRefused, newCredentials, type Account } from "./clients";
import type { E2eTest } from "./types";

const IMAP = ["service:dovecot.service", "service:chatmaild.service"];
const WEB = ["service:nginx.service"];

export const accounts: E2eTest[] = [
  {
    name: "POST /new returns JSON credentials for a fresh address at the relay's domain",
    needs: WEB,
    async run(ctx) {
      const reply = await https(ctx, "POST", "/new");
      if (reply.status !== 200)
        throw new Error(`POST /new: status ${reply.status}: ${reply.body.slice(0, 200)}`);
      const type = String(reply.headers["content-type"]);
      if (!type.startsWith("application/json")) throw new Error(`POST /new: content-type ${type}`);
      const creds = JSON.parse(reply.body) as { email?: string; password?: string };
      const c = ctx.first.config;
      const local = new RegExp(
        `^[a-z0-9]{${c.usernameMinLength},${c.usernameMaxLength}}@${ctx.domain.replace(/\./g, "\\.")}$`,
      );
      if (!creds.email || !local.test(creds.email))
        throw new Error(`POST /new: email ${JSON.stringify(creds.email)}`);
      if (!creds.password || creds.password.length <= c.passwordMinLength) {
        throw new Error(
          `POST /new: password of ${creds.password?.length ?? 0} characters, want more than ${c.passwordMinLength}`,
        );
      }
      // The credentials work as handed out: the first login creates the account.
      const client = await imapLogin(ctx, { addr: creds.email, password: creds.password });
      await client.logout();
    },
  },
  {
    name: "the first IMAP login creates the account and later logins need the same password",
    needs: IMAP,
    async run(ctx) {
      const account = newCredentials(ctx);
      await (await imapLogin(ctx, account)).logout();
      const again = await imapLogin(ctx, account);
      await again.logout();
      if (!(await imapLoginRefused(ctx, { ...account, password: account.password + "x" }))) {
        throw new Error("a wrong password for an existing account was accepted");
      }
    },
  },
  {
    name: "a password shorter than passwordMinLength creates no account",
    needs: IMAP,
    async run(ctx) {
      const fresh = newCredentials(ctx);
      const short: Account = {
        addr: fresh.addr,
        password: fresh.password.slice(0, ctx.first.config.passwordMinLength - 1),
      };
      if (!(await imapLoginRefused(ctx, short)))
        throw new Error(`a ${short.password.length}-character password created ${short.addr}`);
      if (!(await imapLoginRefused(ctx, { addr: fresh.addr, password: "admin" })))
        throw new Error("password 'admin' was accepted");
    },
  },
  {
    name: "two new addresses may use the same password",
    needs: IMAP,
    async run(ctx) {
      const a = newCredentials(ctx);
      const b = { ...newCredentials(ctx), password: a.password };
      for (const account of [a, b]) await (await imapLogin(ctx, account)).logout();
    },
  },
  {
    name: "10 concurrent first logins of one fresh address all succeed",
    needs: IMAP,
    async run(ctx) {
      const account = newCredentials(ctx);
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => imapLogin(ctx, account)));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      await Promise.all(results.map((r) => (r.status === "fulfilled" ? r.value.logout() : undefined)));
      if (failed.length > 0)
        throw new Error(`${failed.length} of 10 logins failed: ${(failed[0].reason as Error).message}`);
    },
  },
  {
    name: "IMAP CAPABILITY announces XCHATMAIL and XDELTAPUSH",
    needs: IMAP,
    async run(ctx) {
      const client = await imapLogin(ctx, newCredentials(ctx));
      const caps = [...client.capabilities.keys()];
      await client.logout();
      const missing = ["XCHATMAIL", "XDELTAPUSH"].filter((c) => !caps.includes(c));
      if (missing.length > 0)
        throw new Error(`CAPABILITY lacks ${missing.join(", ")}; has ${caps.join(" ")}`);
    },
  },
];
