import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { accountFor, getLastLogin, setLastLogin } from "../../daemons/doveauth/user";
import { startLastlogin } from "../../daemons/lastlogin";
import type { Service } from "../../daemons/service";
import { converse, DOMAIN, tempRelay, type TempRelay } from "./helpers";

describe("lastlogin", () => {
  let relay: TempRelay;
  let service: Service;
  let sock: string;
  const addr = `user.name@${DOMAIN}`;

  beforeEach(async () => {
    relay = tempRelay();
    sock = relay.socket("lastlogin");
    mkdirSync(join(relay.config.mailboxesDir, addr));
    writeFileSync(join(relay.config.mailboxesDir, addr, "password"), "{SHA512-CRYPT}$6$x$y");
    service = await startLastlogin(relay.config, { socketPath: sock, log: memoryLogger() });
  });
  afterEach(async () => {
    await service.close();
    relay.cleanup();
  });

  const mtime = () => Math.trunc(statSync(join(relay.config.mailboxesDir, addr, "password")).mtimeMs / 1000);

  it("stores the login day (UTC midnight) as the password file's mtime", async () => {
    expect(
      await converse(sock, `B1111\t${addr}\nS1111\tshared/last-login/${addr}\t1700000000\nC1111\n`),
    ).toBe("O\n");
    expect(mtime()).toBe(Math.floor(1700000000 / 86400) * 86400);
  });

  it("takes the address from the key, not from the transaction user", async () => {
    expect(await converse(sock, `B1\tother@${DOMAIN}\nS1\tshared/last-login/${addr}\t200000\nC1\n`)).toBe(
      "O\n",
    );
    expect(mtime()).toBe(172800);
  });

  it("fails the commit for unknown keys and non-numeric times", async () => {
    expect(await converse(sock, `B1\t${addr}\nS1\tshared/other/${addr}\t100000\nC1\n`)).toBe("F\n");
    expect(await converse(sock, `B2\t${addr}\nS2\tshared/last-login/${addr}\tyesterday\nC2\n`)).toBe("F\n");
  });

  it("writes nothing for addresses with ../ or without an account", async () => {
    expect(await converse(sock, `B1\tx\nS1\tshared/last-login/../../x@${DOMAIN}\t100000\nC1\n`)).toBe("F\n");
    expect(await converse(sock, `B1\tx\nS1\tshared/last-login/nobody123@${DOMAIN}\t100000\nC1\n`)).toBe(
      "O\n",
    );
  });

  it("answers lookups with N", async () => {
    expect(await converse(sock, `Lshared/last-login/${addr}\t${addr}\n`)).toBe("N\n");
  });
});

describe("setLastLogin", () => {
  it("rounds down to whole days and reads back the same day for every time within it", async () => {
    const relay = tempRelay();
    const account = accountFor(relay.config.mailboxesDir, `user.name@${DOMAIN}`);
    mkdirSync(account.maildir);
    writeFileSync(account.passwordPath, "x");
    await setLastLogin(account, 100000, memoryLogger());
    expect(await getLastLogin(account)).toBe(86400);
    await setLastLogin(account, 200000, memoryLogger());
    expect(await getLastLogin(account)).toBe(172800);
    for (let i = 0; i < 10; i++) {
      await setLastLogin(account, 86400 * 4 + i, memoryLogger());
      expect(await getLastLogin(account)).toBe(86400 * 4);
    }
    relay.cleanup();
  });
});
