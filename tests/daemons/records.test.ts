import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { startDoveauth } from "../../daemons/doveauth";
import { AccountRecords, REVALIDATE_MS } from "../../daemons/doveauth/records";
import { accountFor, setPassword } from "../../daemons/doveauth/user";
import type { Service } from "../../daemons/service";
import { DictClient, DOMAIN, tempRelay, type TempRelay } from "./helpers";

const relays: TempRelay[] = [];
const services: Service[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  for (const r of relays.splice(0)) r.cleanup();
});

/** A clock a minute ahead: files written by the test are old enough for their answers to be kept. */
const later = () => Date.now() + 60_000;

/** The `later` clock, moved on by hand past the revalidation window. */
function steppedClock(): { now: () => number; pass: () => void } {
  let offset = 60_000;
  return { now: () => Date.now() + offset, pass: () => (offset += REVALIDATE_MS) };
}

function relayWith(addrs: Record<string, string>): TempRelay {
  const relay = tempRelay();
  relays.push(relay);
  for (const [addr, hash] of Object.entries(addrs))
    setPassword(accountFor(relay.config.mailboxesDir, addr), hash);
  return relay;
}

const A = `alice1234@${DOMAIN}`;
const B = `bobby1234@${DOMAIN}`;
const C = `carol1234@${DOMAIN}`;

describe("AccountRecords", () => {
  it("keeps an unchanged account's answer and reply line", () => {
    const relay = relayWith({ [A]: "{PBKDF2}$1$salt$5000$aa" });
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), later);
    const first = records.get(A);
    expect(first?.record.password).toBe("{PBKDF2}$1$salt$5000$aa");
    expect(records.get(A)).toBe(first);
    expect(records.size).toBe(1);
  });

  it("sees a new password once the revalidation window passed", () => {
    const relay = relayWith({ [A]: "{PBKDF2}$1$salt$5000$aa" });
    const clock = steppedClock();
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), clock.now);
    records.get(A);
    setPassword(accountFor(relay.config.mailboxesDir, A), "{PBKDF2}$1$salt$5000$bb");
    // Within the window the kept answer stands: the file is not looked at.
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$aa");
    clock.pass();
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$bb");
    // The same size, renamed into place as an operator's script would.
    const path = accountFor(relay.config.mailboxesDir, A).passwordPath;
    writeFileSync(`${path}.new`, "{PBKDF2}$1$salt$5000$cc");
    renameSync(`${path}.new`, path);
    clock.pass();
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$cc");
  });

  it("reuses an answer the file still confirms after the window, and checks again a window later", () => {
    const relay = relayWith({ [A]: "{PBKDF2}$1$salt$5000$aa" });
    const clock = steppedClock();
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), clock.now);
    const first = records.get(A);
    clock.pass();
    expect(records.get(A)).toBe(first);
    setPassword(accountFor(relay.config.mailboxesDir, A), "{PBKDF2}$1$salt$5000$bb");
    expect(records.get(A)).toBe(first);
    clock.pass();
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$bb");
  });

  it("sees a removed password file or account directory once the window passed", () => {
    const relay = relayWith({ [A]: "{PBKDF2}$1$salt$5000$aa", [B]: "{PBKDF2}$1$salt$5000$bb" });
    const clock = steppedClock();
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), clock.now);
    records.get(A);
    records.get(B);
    rmSync(accountFor(relay.config.mailboxesDir, A).passwordPath);
    rmSync(accountFor(relay.config.mailboxesDir, B).maildir, { recursive: true });
    clock.pass();
    expect(records.get(A)).toBeUndefined();
    expect(records.get(B)).toBeUndefined();
    expect(records.size).toBe(0);
  });

  it("never keeps a missing account: one created later is found at once", () => {
    const relay = relayWith({});
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), later);
    expect(records.get(A)).toBeUndefined();
    setPassword(accountFor(relay.config.mailboxesDir, A), "{PBKDF2}$1$salt$5000$aa");
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$aa");
  });

  it("keeps nothing for a file changed just now, so a same-size rewrite in place is seen", () => {
    const relay = relayWith({ [A]: "{PBKDF2}$1$salt$5000$aa" });
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger());
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$aa");
    expect(records.size).toBe(0);
    writeFileSync(accountFor(relay.config.mailboxesDir, A).passwordPath, "{PBKDF2}$1$salt$5000$zz");
    expect(records.get(A)?.record.password).toBe("{PBKDF2}$1$salt$5000$zz");
  });

  it("keeps at most `max` answers, dropping the oldest", () => {
    const relay = relayWith({ [A]: "x1", [B]: "x2", [C]: "x3" });
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), later, 2);
    const a = records.get(A);
    records.get(B);
    records.get(C);
    expect(records.size).toBe(2);
    expect(records.get(A)).not.toBe(a);
    expect(records.get(A)?.record.password).toBe("x1");
  });

  it("answers nothing for a file where the account directory should be", () => {
    const relay = relayWith({});
    writeFileSync(join(relay.config.mailboxesDir, A), "");
    const records = new AccountRecords(relay.config.mailboxesDir, undefined, memoryLogger(), later);
    expect(records.get(A)).toBeUndefined();
  });
});

describe("doveauth with kept answers", () => {
  it("answers a changed or removed password file once the revalidation window passed", async () => {
    const relay = relayWith({});
    const sock = relay.socket("doveauth");
    const clock = steppedClock();
    services.push(
      await startDoveauth(relay.config, {
        socketPath: sock,
        nocreateFile: join(relay.dir, "nocreate"),
        log: memoryLogger(),
        now: clock.now,
      }),
    );
    const client = await DictClient.open(sock);
    const userdb = `Lshared/userdb/${A}`;
    const created = await client.request(`Lshared/passdb/password123"${A}"`);
    expect(created).toMatch(/^O\{"addr": /);
    expect(await client.request(userdb)).toBe(created);
    expect(await client.request(userdb)).toBe(created);
    setPassword(accountFor(relay.config.mailboxesDir, A), "{SHA512-CRYPT}$6$abc$def");
    clock.pass();
    expect(JSON.parse((await client.request(userdb)).slice(1)).password).toBe("{SHA512-CRYPT}$6$abc$def");
    rmSync(accountFor(relay.config.mailboxesDir, A).passwordPath);
    clock.pass();
    expect(await client.request(userdb)).toBe("N\n");
    client.close();
  });
});
