// An invite-only relay: with inviteTokens set, only a password that starts with a token creates an address,
// /new?TOKEN hands out such passwords, the nocreate file stops creation even with a token, and existing
// accounts keep working. The group deploys the tokens first and the open config again at the end.
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RUN_LOG, type Step } from "../../../core/plan";
import { PATHS } from "../../../core/plan/facts";
import { https, imapLogin, imapLoginRefused, newCredentials, type Account } from "./clients";
import { DcClient } from "./dcclient";
import { onboardingLink } from "./deltachat";
import { waitFor } from "../proc";
import type { Deployed, E2eTest, SuiteContext } from "./types";

// A fresh token per run; it doubles as a sentinel: no script or log line may contain it.
const TOKEN = `inv${randomUUID().replace(/-/g, "").slice(0, 12)}`;
const NEEDS = ["service:dovecot.service", "service:chatmaild.service", "service:nginx.service"];
let existing: Account | undefined;
let withTokens: Deployed | undefined;

/** Whether a step's hash is derived from a secret and so never shown in plain text. */
const hidesHash = (s: Step) => s.secretHash;

/** Every file below `dir`, as text. */
function filesBelow(dir: string): Array<[string, string]> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return [path, readFileSync(path, "latin1")] as [string, string];
    });
}

const AUTH_READY_DEADLINE_MS = 30_000;

/**
 * After a deploy that restarted chatmaild, doveauth's socket comes up a moment after systemd reports the service
 * started (Type=simple); until then Dovecot answers "Temporary authentication failure". Wait until an existing
 * account logs in again, as a client's retry would.
 */
async function authReady(ctx: SuiteContext): Promise<void> {
  if (!existing) throw new Error("no account from before the tokens (the deploy test did not run)");
  const account = existing;
  await waitFor(
    "IMAP logins answered again after the deploy",
    AUTH_READY_DEADLINE_MS,
    async () => {
      await (await imapLogin(ctx, account)).logout();
      return true;
    },
    500,
  );
}

async function newWithToken(ctx: SuiteContext): Promise<Account> {
  const reply = await https(ctx, "POST", `/new?${TOKEN}`);
  if (reply.status !== 200) throw new Error(`POST /new?TOKEN: status ${reply.status}`);
  const creds = JSON.parse(reply.body) as { email: string; password: string };
  return { addr: creds.email, password: creds.password };
}

export const invites: E2eTest[] = [
  {
    name: "deploying inviteTokens keeps the token out of every script and the server's run log",
    needs: NEEDS,
    async run(ctx) {
      // An account from the open phase, to check later that it is unaffected.
      existing = newCredentials(ctx);
      await (await imapLogin(ctx, existing)).logout();
      // What an operator runs: preview first (its output is checked for secrets below), then up.
      await ctx.stack.configureRelay(ctx.optionsFor({ inviteTokens: [TOKEN] }), ctx.target);
      await ctx.stack.preview();
      const deployed = await ctx.deploy({ inviteTokens: [TOKEN] });
      withTokens = deployed;
      await authReady(ctx);
      const leaking = deployed.plan.steps.filter((s) => s.script.includes(TOKEN)).map((s) => s.id);
      if (leaking.length > 0) throw new Error(`the invite token is in the scripts of ${leaking.join(", ")}`);
      const carrying = deployed.plan.steps.filter((s) => s.stdin.includes(TOKEN));
      const unmarked = carrying.filter((s) => !s.secret).map((s) => s.id);
      if (carrying.length === 0) throw new Error("no step carries the invite token to the server");
      if (unmarked.length > 0)
        throw new Error(`steps carry the token without being marked secret: ${unmarked.join(", ")}`);
      const inLog = await ctx.ssh.out(`grep -c '${TOKEN}' /var/lib/chatmail-deploy/runs.log || true`);
      if (inLog !== "0") throw new Error("the invite token is in the server's run log");
    },
  },
  {
    name: "the token, the SSH key and secret-derived hashes are in no CLI output, state file or server log",
    needs: NEEDS,
    async run(ctx) {
      if (!withTokens) throw new Error("the deploy with inviteTokens did not run");
      const keyLines = readFileSync(ctx.target.keyPath, "utf8")
        .split("\n")
        .filter((l) => l.length > 20 && !l.startsWith("-----"));
      // A hash over a file that holds the token lets a short token be guessed offline, so it is secret too.
      const hashes = withTokens.plan.steps.filter((s) => hidesHash(s)).map((s) => s.hash);
      if (hashes.length === 0) throw new Error("no step's hash is derived from the invite token");
      const needles: Array<[string, string]> = [
        ["the invite token", TOKEN],
        ...keyLines.map((l) => ["a line of the SSH private key", l] as [string, string]),
        ...hashes.map((h) => ["a secret-derived step hash", h] as [string, string]),
      ];
      const places: Array<[string, string]> = [
        ["pulumi preview/up output", ctx.transcript()],
        ["pulumi stack export", await ctx.stack.exportState()],
        ...filesBelow(ctx.stack.stateDir),
        ["the server's journal", await ctx.ssh.out("journalctl --no-pager -o cat")],
        ["the server's run log", await ctx.ssh.out(`cat ${RUN_LOG}`)],
      ];
      const leaks = places.flatMap(([where, text]) =>
        needles.filter(([, needle]) => text.includes(needle)).map(([what]) => `${what} in ${where}`),
      );
      if (leaks.length > 0) throw new Error(`secrets leaked:\n  ${[...new Set(leaks)].join("\n  ")}`);
    },
  },
  {
    name: "with inviteTokens only a password starting with a token creates an address",
    needs: NEEDS,
    async run(ctx) {
      const plain = newCredentials(ctx);
      if (!(await imapLoginRefused(ctx, plain))) throw new Error(`${plain.addr} was created without a token`);
      const inside = { ...newCredentials(ctx), password: `x${TOKEN}${randomUUID().slice(0, 8)}` };
      if (!(await imapLoginRefused(ctx, inside)))
        throw new Error("a token that is not at the start of the password created an account");
      const invited = newCredentials(ctx, TOKEN);
      await (await imapLogin(ctx, invited)).logout();
    },
  },
  {
    name: "credentials from POST /new?TOKEN create their account",
    needs: NEEDS,
    async run(ctx) {
      const creds = await newWithToken(ctx);
      if (!creds.password.startsWith(TOKEN))
        throw new Error("the password from /new?TOKEN does not start with the token");
      await (await imapLogin(ctx, creds)).logout();
    },
  },
  {
    name: "the nocreate file blocks creation even with a token, and existing accounts still log in",
    needs: NEEDS,
    async run(ctx) {
      await ctx.ssh.exec(`touch ${PATHS.nocreateFile}`);
      try {
        const invited = newCredentials(ctx, TOKEN);
        if (!(await imapLoginRefused(ctx, invited)))
          throw new Error(`${PATHS.nocreateFile} did not stop creation with a token`);
        if (!existing) throw new Error("no account from before the tokens (the deploy test did not run)");
        await (await imapLogin(ctx, existing)).logout();
      } finally {
        await ctx.ssh.exec(`rm -f ${PATHS.nocreateFile}`);
      }
    },
  },
  {
    name: "the home page of an invite-only relay asks for an invite instead of offering sign-up",
    needs: NEEDS,
    async run(ctx) {
      const page = await https(ctx, "GET", "/");
      if (page.status !== 200) throw new Error(`GET /: status ${page.status}`);
      if (!/invite-only/i.test(page.body))
        throw new Error("the home page does not say the relay is invite-only");
      if (page.body.includes("cta-button")) throw new Error("the home page still offers the sign-up button");
      if (page.body.includes(TOKEN)) throw new Error("the home page shows the invite token");
    },
  },
  {
    name: "Delta Chat creates a profile on the invite-only relay only from a /new?TOKEN link",
    needs: NEEDS,
    async run(ctx) {
      const core = DcClient.start(ctx);
      try {
        const invited = await core.profile(await onboardingLink(ctx, `?${TOKEN}`));
        if ((await core.dc.rpc.getConfig(invited, "configured")) !== "1")
          throw new Error("the invited profile is not configured");
        const uninvited = newCredentials(ctx);
        const link = `dclogin:${uninvited.addr}?p=${encodeURIComponent(uninvited.password)}&v=1&ic=3`;
        const refused = await core.profile(link).then(
          () => false,
          () => true,
        );
        if (!refused) throw new Error(`a profile without a token was configured for ${uninvited.addr}`);
      } finally {
        await core.close();
      }
    },
  },
  {
    name: "removing inviteTokens opens registration again",
    needs: NEEDS,
    async run(ctx) {
      await ctx.deploy();
      await authReady(ctx);
      // What the plan no longer owns leaves the server: the token's invite files.
      const left = await ctx.ssh.out(`ls -A ${PATHS.invitesDir} 2>/dev/null || true`);
      if (left !== "") throw new Error(`${PATHS.invitesDir} still holds: ${left.split("\n").join(", ")}`);
      const grep = await ctx.ssh.out(
        `grep -rlF '${TOKEN}' /etc /root /usr/local /var/lib/chatmail-deploy 2>/dev/null || true`,
      );
      if (grep !== "") throw new Error(`files on the server still hold the removed token: ${grep}`);
      await (await imapLogin(ctx, newCredentials(ctx))).logout();
      const page = await https(ctx, "GET", "/");
      if (!page.body.includes("cta-button"))
        throw new Error("the home page offers no sign-up button after the tokens were removed");
    },
  },
];
