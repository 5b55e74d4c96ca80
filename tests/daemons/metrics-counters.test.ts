// The relay's counters moved by the daemons' real code paths: doveauth over its dict socket, newaccount over
// HTTP, the push notifier against a local notification server. Each test gets metrics of its own.
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { startDoveauth } from "../../daemons/doveauth";
import { boundedHasher, HashQueueFullError } from "../../daemons/doveauth/hasher";
import { Notifier } from "../../daemons/metadata/notifier";
import { TokenStore } from "../../daemons/metadata/tokens";
import { relayMetrics, type RefusalReason, type RelayMetrics } from "../../daemons/metrics/relay";
import { startNewAccount } from "../../daemons/newaccount";
import type { RelayConfig } from "../../core/config/options";
import { converse, DOMAIN, tempRelay, type TempRelay } from "./helpers";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const passdb = (pw: string, user: string) => `Lshared/passdb/${pw}"${user}\t${user}\n`;
const userdb = (user: string) => `Lshared/userdb/${user}\t${user}\n`;

/** Every refusal count, so a test sees that exactly the expected reason moved. */
const refusals = (m: RelayMetrics) =>
  Object.fromEntries(
    (["invite", "rate_limit", "load", "memory", "disk", "nocreate", "invalid"] as RefusalReason[]).map(
      (r) => [r, m.creationRefusals.get({ reason: r })],
    ),
  );
const none = { invite: 0, rate_limit: 0, load: 0, memory: 0, disk: 0, nocreate: 0, invalid: 0 };

async function doveauth(
  overrides: Partial<RelayConfig> = {},
  ini: Record<string, string> = {},
  hasher?: object,
) {
  const relay = tempRelay(ini, overrides);
  cleanups.push(() => relay.cleanup());
  const metrics = relayMetrics();
  const sock = relay.socket("doveauth");
  const nocreateFile = join(relay.dir, "nocreate");
  const service = await startDoveauth(relay.config, {
    socketPath: sock,
    nocreateFile,
    log: memoryLogger("doveauth"),
    metrics,
    ...hasher,
  });
  cleanups.push(() => service.close());
  return { relay, sock, metrics, nocreateFile };
}

describe("doveauth's counters", () => {
  it("counts a creation at the first login, a login per passdb lookup, and no creation for the next login", async () => {
    const { sock, metrics: m } = await doveauth();
    const addr = `newuser12@${DOMAIN}`;
    expect((await converse(sock, passdb("q9mr3faue1", addr))).startsWith("O{")).toBe(true);
    expect(m.accountCreations.get({ via: "login" })).toBe(1);
    expect(m.logins.get({ result: "ok" })).toBe(1);
    await converse(sock, passdb("q9mr3faue1", addr) + passdb("wrong-but-dovecot-decides", addr));
    await converse(sock, userdb(addr));
    expect(m.accountCreations.get({ via: "login" })).toBe(1);
    expect(m.logins.get({ result: "ok" })).toBe(3); // userdb lookups are no logins
    expect(m.logins.get({ result: "failed" })).toBe(0);
    expect(refusals(m)).toEqual(none);
  });

  it("counts concurrent first logins of one address as one creation", async () => {
    const { sock, metrics: m } = await doveauth();
    const addr = `together1@${DOMAIN}`;
    await converse(sock, passdb("q9mr3faue1", addr).repeat(5));
    expect(m.accountCreations.get({ via: "login" })).toBe(1);
    expect(m.logins.get({ result: "ok" })).toBe(5);
  });

  it.each<[string, Partial<RelayConfig>, Record<string, string>, string, string, RefusalReason]>([
    [
      "a missing invite token",
      { inviteTokens: ["s3cr3tinvite"] },
      {},
      `invited12@${DOMAIN}`,
      "q9mr3faue1",
      "invite",
    ],
    ["a short password", {}, {}, `shortpw12@${DOMAIN}`, "short", "invalid"],
    ["a short local part", {}, {}, `ab@${DOMAIN}`, "q9mr3faue1", "invalid"],
    ["an address that names no mailbox", {}, {}, `../x1234567@${DOMAIN}`, "q9mr3faue1", "invalid"],
    [
      "too little memory",
      {},
      { min_available_memory: "99999999G" },
      `lowmem123@${DOMAIN}`,
      "q9mr3faue1",
      "memory",
    ],
    [
      "too little disk",
      {},
      { min_free_disk_space: "99999999G" },
      `lowdisk12@${DOMAIN}`,
      "q9mr3faue1",
      "disk",
    ],
  ])(
    "counts a creation refused for %s under its reason, and a failed login",
    async (_, overrides, ini, addr, pw, reason) => {
      const { sock, metrics: m } = await doveauth(overrides, ini);
      expect(await converse(sock, passdb(pw, addr))).toBe("N\n");
      expect(refusals(m)).toEqual({ ...none, [reason]: 1 });
      expect(m.accountCreations.get({ via: "login" })).toBe(0);
      expect(m.logins.get({ result: "failed" })).toBe(1);
      expect(m.logins.get({ result: "ok" })).toBe(0);
    },
  );

  it("counts a refusal while the nocreate file exists, and none for an existing account's login", async () => {
    const { sock, metrics: m, nocreateFile } = await doveauth();
    await converse(sock, passdb("q9mr3faue1", `existing1@${DOMAIN}`));
    writeFileSync(nocreateFile, "");
    expect(await converse(sock, passdb("q9mr3faue1", `blocked12@${DOMAIN}`))).toBe("N\n");
    expect((await converse(sock, passdb("q9mr3faue1", `existing1@${DOMAIN}`))).startsWith("O{")).toBe(true);
    expect(refusals(m)).toEqual({ ...none, nocreate: 1 });
    expect(m.logins.get({ result: "ok" })).toBe(2);
  });

  it("counts a load refusal when the 1-minute load is above maxLoad1m", async () => {
    // maxLoad1m cannot go below 0 and an idle machine may show 0.00, so the limit is put below any load.
    const { sock, metrics: m } = await doveauth({ maxLoad1m: -1 });
    expect(await converse(sock, passdb("q9mr3faue1", `loaded123@${DOMAIN}`))).toBe("N\n");
    expect(refusals(m)).toEqual({ ...none, load: 1 });
  });

  it("counts creations over the creation limit, and a full hashing queue, as rate_limit", async () => {
    const { sock, metrics: m } = await doveauth({ accountCreationsPerMinute: 1 });
    await converse(sock, passdb("q9mr3faue1", `first1234@${DOMAIN}`));
    expect(await converse(sock, passdb("q9mr3faue1", `second123@${DOMAIN}`))).toBe("F\n");
    expect(refusals(m)).toEqual({ ...none, rate_limit: 1 });
    expect(m.logins.get({ result: "failed" })).toBe(1);
    const full = boundedHasher(0, () => Promise.reject(new HashQueueFullError("full")));
    const queued = await doveauth({}, {}, { hasher: full });
    expect(await converse(queued.sock, passdb("q9mr3faue1", `third1234@${DOMAIN}`))).toBe("F\n");
    expect(refusals(queued.metrics)).toEqual({ ...none, rate_limit: 1 });
  });

  it("counts a passdb lookup of another domain, or a malformed one, as a failed login", async () => {
    const { sock, metrics: m } = await doveauth();
    expect(await converse(sock, passdb("q9mr3faue1", "someone12@other.example"))).toBe("N\n");
    expect(await converse(sock, "Lshared/passdb/pw\\\tx\n")).toBe("F\n");
    expect(m.logins.get({ result: "failed" })).toBe(2);
    expect(refusals(m)).toEqual(none);
  });
});

describe("newaccount's counters", () => {
  async function serve(relay: TempRelay, overrides: Partial<RelayConfig> = {}) {
    const metrics = relayMetrics();
    const service = await startNewAccount(
      { ...relay.config, ...overrides },
      { port: 0, log: memoryLogger(), metrics },
    );
    cleanups.push(() => service.close());
    const post = (query = "") =>
      fetch(`http://127.0.0.1:${service.port}/new${query}`, { method: "POST" }).then((r) => r.status);
    return { metrics, post };
  }

  it("counts credentials handed out as via new, and each refusal by reason", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const open = await serve(relay, { accountCreationsPerMinute: 2 });
    expect([await open.post(), await open.post(), await open.post()]).toEqual([200, 200, 429]);
    expect(await open.post("?sometoken")).toBe(403); // no invite tokens on this relay
    expect(open.metrics.accountCreations.get({ via: "new" })).toBe(2);
    expect(open.metrics.accountCreations.get({ via: "login" })).toBe(0);
    expect(refusals(open.metrics)).toEqual({ ...none, rate_limit: 1, invalid: 1 });
    const invite = await serve(relay, { inviteTokens: ["s3cr3tinvite"] });
    expect([
      await invite.post(),
      await invite.post("?wrongtoken"),
      await invite.post("?s3cr3tinvite"),
    ]).toEqual([403, 403, 200]);
    expect(refusals(invite.metrics)).toEqual({ ...none, invite: 2 });
    expect(invite.metrics.accountCreations.get({ via: "new" })).toBe(1);
  });
});

describe("the push notifier's metrics", () => {
  it("counts deliveries and failed tries, and holds the retried ones in the retry queue gauge", async () => {
    const bodies: string[] = [];
    const statuses = [500, 200, 410];
    const server: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        bodies.push(body);
        res.statusCode = statuses.shift() ?? 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const addr = `pushuser1@${DOMAIN}`;
    const tokens = new TokenStore(relay.config.mailboxesDir, memoryLogger());
    await tokens.add(addr, "tok-a");
    const metrics = relayMetrics();
    const notifier = new Notifier({
      queueDir: join(relay.config.mailboxesDir, "pending_notifications"),
      notificationUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}/notify`,
      tokens,
      log: memoryLogger(),
      retryDelaysS: [0, 0.5, 0.5, 0.5, 0.5],
      metrics,
    });
    cleanups.push(() => notifier.close());
    await notifier.newMessage(addr);
    const deadline = Date.now() + 5000;
    while (metrics.pushFailures.get() === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(metrics.pushFailures.get()).toBe(1);
    expect(metrics.pushRetryQueue.get()).toBe(1); // waiting for its second try
    await notifier.idle();
    expect(bodies).toEqual(["tok-a", "tok-a"]);
    expect(metrics.pushDeliveries.get()).toBe(1);
    expect(metrics.pushRetryQueue.get()).toBe(0);
    // 410 (the token is gone) is neither a delivery nor a failure.
    await notifier.newMessage(addr);
    await notifier.idle();
    expect(metrics.pushDeliveries.get()).toBe(1);
    expect(metrics.pushFailures.get()).toBe(1);
  });
});
