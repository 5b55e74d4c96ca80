import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { newAccount, startNewAccount } from "../../daemons/newaccount";
import { DOMAIN, tempRelay } from "./helpers";

const base = tempRelay().config;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function serve(overrides = {}, now?: () => number) {
  const service = await startNewAccount({ ...base, ...overrides }, { port: 0, log: memoryLogger(), now });
  closers.push(() => service.close());
  return `http://127.0.0.1:${service.port}`;
}

/** POST /new as nginx forwards it for the client `ip`. */
const post = (url: string, ip?: string) =>
  fetch(`${url}/new`, { method: "POST", headers: ip ? { "X-Real-IP": ip } : {} });

describe("newAccount", () => {
  it("makes a 9-character [a-z0-9] user and a 12-character password from letters, digits, punctuation", () => {
    const r = newAccount(base, "");
    if (!r.ok) throw new Error(r.reason);
    expect(r.email).toMatch(new RegExp(`^[a-z0-9]{9}@${DOMAIN.replace(/\./g, "\\.")}$`));
    expect(r.password).toHaveLength(12);
    expect(r.password).toMatch(/^[\x21-\x7e]+$/);
    expect(r.dcloginUrl).toBeUndefined();
  });

  it("keeps the password within passwordMaxLength", () => {
    const r = newAccount({ ...base, passwordMinLength: 9, passwordMaxLength: 10 }, "");
    if (!r.ok) throw new Error(r.reason);
    expect(r.password).toHaveLength(10);
  });

  it("differs in both email and password between calls", () => {
    const [a, b] = [newAccount(base, ""), newAccount(base, "")];
    if (!a.ok || !b.ok) throw new Error("refused");
    expect(a.email).not.toBe(b.email);
    expect(a.password).not.toBe(b.password);
  });

  it("prefixes the password with a configured invite token", () => {
    const r = newAccount({ ...base, inviteTokens: ["s3cr3tinvite", "other-token"] }, "s3cr3tinvite");
    if (!r.ok) throw new Error(r.reason);
    expect(r.password.startsWith("s3cr3tinvite")).toBe(true);
    expect(r.password).toHaveLength("s3cr3tinvite".length + 12);
  });

  it.each([
    ["an unknown token", ["s3cr3tinvite"], "wrongtoken1"],
    ["no token on an invite-only relay", ["s3cr3tinvite"], ""],
    ["a token on an open relay", [], "s3cr3tinvite"],
  ])("refuses %s with 403", (_what, tokens, query) => {
    expect(newAccount({ ...base, inviteTokens: tokens }, query)).toMatchObject({ ok: false, status: 403 });
  });

  it("adds a dclogin URL that accepts the certificate on self-signed relays", () => {
    const r = newAccount({ ...base, tlsMode: "self-signed" }, "");
    if (!r.ok) throw new Error(r.reason);
    expect(r.dcloginUrl).toMatch(/^dclogin:[a-z0-9]{9}@chat\.example\.org\?p=[^&]+&v=1&ic=3$/);
    expect(decodeURIComponent(r.dcloginUrl!.split("p=")[1].split("&")[0])).toBe(r.password);
  });
});

describe("startNewAccount", () => {
  it.each(["/new", "/cgi-bin/newemail.py"])("answers POST %s with JSON credentials", async (path) => {
    const url = await serve();
    const res = await fetch(url + path, { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const text = await res.text();
    expect(text).toMatch(/^\{"email": "[a-z0-9]{9}@chat\.example\.org", "password": ".+"\}\n$/);
    const body = JSON.parse(text) as { password: string };
    expect(Object.keys(body)).toEqual(["email", "password"]);
    expect(body.password).toHaveLength(12);
  });

  it("passes the query string as invite token and refuses a wrong one with a reason", async () => {
    const url = await serve({ inviteTokens: ["s3cr3tinvite"] });
    const ok = (await (await fetch(`${url}/new?s3cr3tinvite`, { method: "POST" })).json()) as {
      password: string;
    };
    expect(ok.password.startsWith("s3cr3tinvite")).toBe(true);
    const bad = await fetch(`${url}/cgi-bin/newemail.py?nope`, { method: "POST" });
    expect(bad.status).toBe(403);
    expect(((await bad.json()) as { reason: string }).reason).toContain("invite");
  });

  it("answers 405 to GET and 404 elsewhere", async () => {
    const url = await serve();
    expect((await fetch(`${url}/new`)).status).toBe(405);
    expect((await fetch(`${url}/other`, { method: "POST" })).status).toBe(404);
  });
});

describe("startNewAccount creation limits", () => {
  it("answers 429 per client address after its burst, other clients still get accounts, then refills", async () => {
    const clock = { ms: 1_000_000 };
    const url = await serve(
      { accountCreationsPerMinute: 100, accountCreationsPerMinutePerClient: 3 },
      () => clock.ms,
    );
    for (let i = 0; i < 3; i++) expect((await post(url, "203.0.113.9")).status).toBe(200);
    const refused = await post(url, "203.0.113.9");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(((await refused.json()) as { reason: string }).reason).toBe(
      "Too many new accounts right now; try again in a minute.",
    );
    expect((await post(url, "2001:db8:5:6::1")).status).toBe(200);
    clock.ms += 20_000; // one of three a minute is back
    expect((await post(url, "203.0.113.9")).status).toBe(200);
    expect((await post(url, "203.0.113.9")).status).toBe(429);
  });

  it("limits the total, also for requests without a client address", async () => {
    const clock = { ms: 1_000_000 };
    const url = await serve(
      { accountCreationsPerMinute: 2, accountCreationsPerMinutePerClient: 10 },
      () => clock.ms,
    );
    expect((await post(url)).status).toBe(200);
    expect((await post(url, "198.51.100.4")).status).toBe(200);
    expect((await post(url, "198.51.100.5")).status).toBe(429);
    clock.ms += 30_000;
    expect((await post(url, "198.51.100.5")).status).toBe(200);
  });

  it("refused invite tokens do not use up creations", async () => {
    const url = await serve({ inviteTokens: ["s3cr3tinvite"], accountCreationsPerMinute: 1 });
    expect((await fetch(`${url}/new?wrong`, { method: "POST" })).status).toBe(403);
    expect((await fetch(`${url}/new?s3cr3tinvite`, { method: "POST" })).status).toBe(200);
  });
});
