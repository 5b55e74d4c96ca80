// chatmaild's Prometheus metrics, as a real Prometheus saw them during the suite (tests/e2e/prometheus.ts scrapes
// the relay's test address every second). Some tests of earlier groups are watched: the runner waits for a fresh
// scrape right before and right after each of them, so the counters' increase between those two scrapes is
// exactly what that test did, and the test's own actions say what it must be. Totals over the whole suite are
// exact only where nothing else moves them; elsewhere they are lower bounds, each with its reason. Last, the
// metrics port on the default address (127.0.0.1) is checked to be closed on the relay's network address.
import { connect } from "node:net";
import { tlsPaths } from "../../../core/plan/facts";
import { METRICS_PORT } from "../../../core/server";
import { JOB, type Prometheus, type Sample } from "../prometheus";
import type { SuiteHooks } from "./runner";
import { runningServices } from "./server";
import type { E2eTest, SuiteContext } from "./types";

/** What a watched test must move: series selector -> exact increase, or at least this much (`min`). */
type Moves = Record<string, number | { min: number }>;

const CREATED_LOGIN = 'chatmail_account_creations_total{via="login"}';
const CREATED_NEW = 'chatmail_account_creations_total{via="new"}';
const LOGIN_OK = 'chatmail_logins_total{result="ok"}';
const LOGIN_FAILED = 'chatmail_logins_total{result="failed"}';
const refused = (reason: string) => `chatmail_account_creation_refusals_total{reason="${reason}"}`;
const verdict = (direction: string, outcome: string, rule: string) =>
  `chatmail_filter_verdicts_total{direction="${direction}",verdict="${outcome}",rule="${rule}"}`;

/**
 * The watched tests, by group and full name, and what each does to the counters (read from the test itself).
 * Every IMAP or SMTP login is one doveauth passdb lookup: "ok" when it found or created the account (a wrong
 * password too: Dovecot, not doveauth, compares it), "failed" when no account could be had.
 */
export const WATCHED: ReadonlyArray<{ group: string; test: string; moves: Moves }> = [
  {
    group: "accounts",
    test: "POST /new returns JSON credentials for a fresh address at the relay's domain",
    // /new hands out credentials; their first IMAP login creates the account.
    moves: { [CREATED_NEW]: 1, [CREATED_LOGIN]: 1, [LOGIN_OK]: 1, [LOGIN_FAILED]: 0 },
  },
  {
    group: "accounts",
    test: "the first IMAP login creates the account and later logins need the same password",
    // Three logins of one address: creation, the same password again, a wrong password.
    moves: { [CREATED_LOGIN]: 1, [LOGIN_OK]: 3, [LOGIN_FAILED]: 0 },
  },
  {
    group: "accounts",
    test: "a password shorter than passwordMinLength creates no account",
    // Two logins of a fresh address, with a short password and with "admin": both refused as invalid.
    moves: { [refused("invalid")]: 2, [LOGIN_FAILED]: 2, [CREATED_LOGIN]: 0 },
  },
  {
    group: "accounts",
    test: "10 concurrent first logins of one fresh address all succeed",
    // Concurrent first logins join one creation.
    moves: { [CREATED_LOGIN]: 1, [LOGIN_OK]: 10 },
  },
  {
    group: "mail",
    test: "unencrypted mail to another domain is refused with 523",
    // The sender's SMTP login creates it; its one cleartext message is refused by the outgoing filter.
    moves: { [verdict("outgoing", "refused", "cleartext")]: 1, [CREATED_LOGIN]: 1 },
  },
  {
    group: "mail",
    test: "sending past maxUserSendBurstSize at once is deferred with 450 4.7.1",
    // maxUserSendBurstSize (10) messages pass, then at least one is deferred; how many more pass or are deferred
    // depends on how fast they go out, since the limit refills one message a second.
    moves: {
      chatmail_rate_limit_hits_total: { min: 1 },
      [verdict("outgoing", "accepted", "encrypted")]: { min: 10 },
    },
  },
  {
    group: "inbound and TLS",
    test: "port 25 refuses an encrypted message from another domain that has no DKIM signature",
    // The incoming filter accepts it (encrypted); OpenDKIM refuses it at re-injection, so it is no delivery.
    moves: { [verdict("incoming", "accepted", "encrypted")]: 1 },
  },
  {
    group: "metadata and push",
    test: "a message to an account with a device token makes the relay post that token to the notification server",
    // Two fresh accounts (IMAP logins) and one encrypted message between them.
    moves: { [CREATED_LOGIN]: 2, [verdict("outgoing", "accepted", "encrypted")]: 1 },
  },
  {
    group: "invite tokens",
    test: "with inviteTokens only a password starting with a token creates an address",
    // No token, a token not at the start: two refusals; then one address with the token.
    moves: { [refused("invite")]: 2, [CREATED_LOGIN]: 1 },
  },
  {
    group: "invite tokens",
    test: "the nocreate file blocks creation even with a token, and existing accounts still log in",
    moves: { [refused("nocreate")]: 1, [refused("invite")]: 0, [CREATED_LOGIN]: 0 },
  },
];

const key = (group: string, test: string) => `${group}: ${test}`;
/** The scrape times around each watched test that ran: [before, after], Unix seconds. */
const windows = new Map<string, readonly [number, number]>();

/**
 * Runner hooks: a fresh scrape right before and right after each watched test. A scrape that ended the previous
 * watched test serves as the start of the next one when nothing ran in between.
 */
export function metricsHooks(prometheus: Prometheus): SuiteHooks {
  const watched = new Set(WATCHED.map((w) => key(w.group, w.test)));
  let started: number | undefined;
  let lastEnd: { key: string; at: number } | undefined;
  let previous: string | undefined;
  return {
    async before(group, test) {
      const k = key(group, test);
      const follows = lastEnd !== undefined && lastEnd.key === previous;
      previous = k;
      if (!watched.has(k)) return;
      started = follows ? lastEnd!.at : await prometheus.freshScrape();
    },
    async after(group, test) {
      const k = key(group, test);
      if (!watched.has(k) || started === undefined) return;
      const end = await prometheus.freshScrape();
      windows.set(k, [started, end]);
      lastEnd = { key: k, at: end };
      started = undefined;
    },
  };
}

/**
 * How much a counter rose over the samples (Unix seconds, value): the sum of the rises, where a drop is a restart of
 * chatmaild that started from 0 again.
 */
export function rise(values: readonly Sample[]): number {
  let total = 0;
  for (let i = 1; i < values.length; i++) {
    const [, before] = values[i - 1];
    const [, now] = values[i];
    total += now >= before ? now - before : now;
  }
  return total;
}

/** The raw samples of one series between `from` and `to` (Unix seconds, both included). */
async function samplesOf(p: Prometheus, series: string, from: number, to: number): Promise<Sample[]> {
  const range = Math.ceil(to - from) + 2;
  const result = await p.samples(`${series}[${range}s]`, to);
  if (result.length !== 1) throw new Error(`${series}: ${result.length} series between ${from} and ${to}`);
  return result[0].values.filter(([t]) => t >= from - 0.0005 && t <= to + 0.0005);
}

/** The increase of a counter between two scrapes (`from` must be a scrape of it). */
async function increase(p: Prometheus, series: string, from: number, to: number): Promise<number> {
  const values = await samplesOf(p, series, from, to);
  if (values.length === 0 || Math.abs(values[0][0] - from) > 0.0015)
    throw new Error(`${series}: no sample at the window's start ${from}`);
  return rise(values);
}

/** A counter's total over the whole run: its first value plus every rise since (restarts counted as such). */
async function total(p: Prometheus, series: string): Promise<number> {
  const [r] = await p.samples(`${series}[1h]`);
  if (!r) throw new Error(`Prometheus has no samples of ${series}`);
  return r.values[0][1] + rise(r.values);
}

async function latest(p: Prometheus, expr: string): Promise<number | undefined> {
  const [r] = await p.query(expr);
  return r?.value;
}

/** Prints what Prometheus returned under the test's line of the run log, for whoever reads it. */
const note = (line: string) => void process.stdout.write(`[e2e]     · Prometheus returned ${line}\n`);

function prometheusOf(ctx: SuiteContext): Prometheus {
  if (!ctx.prometheus) throw new Error("no Prometheus in this testbed run (npm run test:e2e starts one)");
  return ctx.prometheus;
}

/** Whether a TCP connection to host:port is accepted within 5 s. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.setTimeout(5000, () => done(false));
  });
}

export const metrics: E2eTest[] = [
  {
    name: "Prometheus scrapes chatmaild's /metrics on the relay's test address, and the target is up",
    needs: ["service:chatmaild.service"],
    async run(ctx) {
      const p = prometheusOf(ctx);
      if (p.target !== `${ctx.addr}:${METRICS_PORT}`) throw new Error(`scrape target ${p.target}`);
      await p.freshScrape();
      const up = await p.query(`up{job="${JOB}"}`);
      if (up.length !== 1 || up[0].value !== 1) throw new Error(`up{job="${JOB}"}: ${JSON.stringify(up)}`);
      // Prometheus's own view of the target: the URL it scrapes and its health.
      const targets = (await (await fetch(`${p.url}/api/v1/targets`)).json()) as {
        data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastError: string }> };
      };
      const active = targets.data.activeTargets;
      const want = `http://${ctx.addr}:${METRICS_PORT}/metrics`;
      if (active.length !== 1 || active[0].scrapeUrl !== want || active[0].health !== "up")
        throw new Error(`Prometheus's targets: ${JSON.stringify(active)}, want ${want} up`);
    },
  },
  {
    name: "each watched test moved the counters by exactly what it did, between the scrapes around it",
    async run(ctx) {
      const p = prometheusOf(ctx);
      const problems: string[] = [];
      const seen: string[] = [];
      for (const { group, test, moves } of WATCHED) {
        const window = windows.get(key(group, test));
        if (!window) {
          problems.push(`${key(group, test)}: not watched (did the test run, under this exact name?)`);
          continue;
        }
        for (const [series, want] of Object.entries(moves)) {
          const got = await increase(p, series, window[0], window[1]);
          const ok = typeof want === "number" ? got === want : got >= want.min;
          seen.push(`${series} +${got}`);
          if (!ok)
            problems.push(
              `${test}: ${series} rose by ${got}, expected ${typeof want === "number" ? want : `at least ${want.min}`}`,
            );
        }
      }
      if (problems.length > 0) throw new Error(`${problems.join("\n")}\nseen: ${seen.join(", ")}`);
      note(`windows: ${seen.join(", ")}`);
    },
  },
  {
    name: "over the whole suite the counters add up: pushes, creations from /new, refusals, and no incoming delivery",
    async run(ctx) {
      const p = prometheusOf(ctx);
      const problems: string[] = [];
      const totals: string[] = [];
      const expect = async (series: string, want: number | { min: number }, why: string) => {
        const got = await total(p, series);
        totals.push(`${series} ${got}`);
        const ok = typeof want === "number" ? got === want : got >= want.min;
        if (!ok) problems.push(`${series} = ${got}, expected ${JSON.stringify(want)} (${why})`);
      };
      // The test's notification server answers every post with 200.
      const posted = ctx.hostSide.notifications.length;
      await expect(
        "chatmail_push_deliveries_total",
        posted,
        "one per notification the test's server received",
      );
      await expect("chatmail_push_failures_total", 0, "the test's server never fails");
      // POST /new: once in accounts, twice for the Delta Chat profiles, twice for the TURN group's profiles,
      // /new?TOKEN twice in the invite group.
      await expect(CREATED_NEW, 7, "the suite's seven POST /new that succeed");
      // The nocreate file exists only during its one test, for one refused login.
      await expect(refused("nocreate"), 1, "one login while the nocreate file exists");
      // The testbed's limits (maxLoad1m 1000, 1000 creations a minute per client, 120 for the relay) are far above
      // what the suite does; refused creations for these would have failed the account tests.
      for (const reason of ["load", "memory", "disk", "rate_limit"])
        await expect(refused(reason), 0, "no pressure");
      // Two in the watched invite test, and the Delta Chat core's logins for the uninvited profile (one or more,
      // as the core tries its configurations).
      await expect(refused("invite"), { min: 3 }, "2 watched plus at least one from the Delta Chat core");
      await expect(refused("invalid"), { min: 2 }, "the watched short-password test");
      await expect(LOGIN_FAILED, { min: 5 }, "the refused logins of the watched tests");
      // Lower bounds: the last second before a deliberate kill or reboot of chatmaild may be lost to the scrapes.
      await expect(CREATED_LOGIN, { min: 7 }, "the watched tests' creations; many other tests create more");
      await expect(verdict("outgoing", "refused", "cleartext"), { min: 1 }, "the refused cleartext message");
      await expect(
        verdict("outgoing", "accepted", "encrypted"),
        { min: 11 },
        "the watched messages, and more",
      );
      await expect("chatmail_rate_limit_hits_total", { min: 1 }, "the burst test's deferred messages");
      // The suite's only mail on port 25 has no DKIM signature; OpenDKIM refuses it, so nothing was delivered.
      const [delivery] = await p.samples("chatmail_last_incoming_delivery_timestamp_seconds[1h]");
      if (!delivery || delivery.values.some(([, v]) => v !== 0))
        problems.push("chatmail_last_incoming_delivery_timestamp_seconds was not 0 throughout");
      if ((await latest(p, "chatmail_push_retry_queue")) !== 0)
        problems.push("the push retry queue is not empty");
      if (problems.length > 0) throw new Error(problems.join("\n"));
      note(`totals: ${totals.join(", ")}`);
    },
  },
  {
    name: "the server's gauges: every service active, the certificate's notAfter, limits, Postfix's queue, accounts",
    async run(ctx) {
      const p = prometheusOf(ctx);
      const problems: string[] = [];
      for (const unit of runningServices(ctx.first.plan)) {
        const v = await latest(p, `chatmail_unit_active{unit="${unit}"}`);
        if (v !== 1) problems.push(`chatmail_unit_active{unit="${unit}"} is ${v}`);
      }
      const cert = tlsPaths(ctx.first.config).cert;
      const notAfter = await ctx.ssh.out(
        `date -d "$(openssl x509 -in ${cert} -noout -enddate | cut -d= -f2)" +%s`,
      );
      const expiry = await latest(p, "chatmail_certificate_expiry_timestamp_seconds");
      if (expiry !== Number(notAfter))
        problems.push(`certificate expiry ${expiry}, the file says ${notAfter}`);
      const limits: Array<[string, number]> = [
        ["chatmail_disk_min_free_bytes", 1024 ** 3], // minFreeDiskSpace 1G
        ["chatmail_memory_min_available_bytes", 200 * 1024 ** 2], // minAvailableMemory 200M
      ];
      for (const [name, want] of limits) {
        const v = await latest(p, name);
        if (v !== want) problems.push(`${name} is ${v}, expected ${want}`);
      }
      for (const name of ["chatmail_disk_free_bytes", "chatmail_memory_available_bytes"]) {
        const v = await latest(p, name);
        if (!(v! > 0)) problems.push(`${name} is ${v}`);
      }
      // Postfix's showq socket answers chatmaild inside its sandbox (the postdrop group): both gauges are there.
      const queued = await latest(p, "chatmail_postfix_queue_messages");
      const oldest = await latest(p, "chatmail_postfix_queue_oldest_age_seconds");
      if (queued === undefined || !(queued >= 0) || oldest === undefined || !(oldest >= 0))
        problems.push(`Postfix queue gauges: ${queued} messages, oldest ${oldest} s`);
      // chatmaild last restarted in the option-change group, and no test since created or removed an account, so
      // the count (read at the first scrape after that start, at most once a minute since) is exact.
      const files = await ctx.ssh.out(
        `find ${ctx.first.config.mailboxesDir} -mindepth 2 -maxdepth 2 -name password -size +0 | wc -l`,
      );
      const accounts = await latest(p, "chatmail_accounts");
      if (accounts !== Number(files))
        problems.push(`chatmail_accounts is ${accounts}, the server has ${files}`);
      if (problems.length > 0) throw new Error(problems.join("\n"));
      note(
        `gauges: chatmail_accounts ${accounts}, certificate expiry ${expiry}, postfix queue ${queued} (oldest ${oldest} s)`,
      );
    },
  },
  {
    name: "with metricsAddress at its default 127.0.0.1 the port is closed on the relay's address, open on loopback",
    needs: ["service:chatmaild.service"],
    async run(ctx) {
      if (!(await accepts(ctx.addr, METRICS_PORT)))
        throw new Error(`the testbed's own metricsAddress ${ctx.addr}:${METRICS_PORT} does not answer`);
      // The testbed sets metricsAddress to the relay's address; this deploy sets the option's default.
      await ctx.deploy({ metricsAddress: "127.0.0.1" });
      if (await accepts(ctx.addr, METRICS_PORT))
        throw new Error(`${ctx.addr}:${METRICS_PORT} accepts connections with metricsAddress 127.0.0.1`);
      const listeners = await ctx.ssh.out(`ss -Hltn 'sport = :${METRICS_PORT}' | awk '{print $4}'`);
      if (listeners !== `127.0.0.1:${METRICS_PORT}`)
        throw new Error(`listeners on port ${METRICS_PORT}: ${JSON.stringify(listeners)}`);
      const body = await ctx.ssh.out(`curl -fsS http://127.0.0.1:${METRICS_PORT}/metrics`);
      if (!/^chatmail_accounts \d+$/m.test(body))
        throw new Error("no chatmail_accounts on loopback's /metrics");
      // Back to the testbed's own config, as the groups after this one expect.
      await ctx.deploy();
    },
  },
];
