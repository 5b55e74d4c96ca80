import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { pbkdf2Sync } from "node:crypto";
import { Doveauth, parseAuthKey, splitAndUnescape, startDoveauth } from "../../daemons/doveauth";
import { boundedHasher } from "../../daemons/doveauth/hasher";
import { creationRefusal } from "../../daemons/doveauth/rules";
import { requireAddress } from "../../daemons/doveauth/user";
import type { Service } from "../../daemons/service";
import { converse, DictClient, DOMAIN, tempRelay, type TempRelay } from "./helpers";

const relays: TempRelay[] = [];
const services: Service[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  for (const r of relays.splice(0)) r.cleanup();
});

async function started(ini: Record<string, string> = {}, overrides = {}) {
  const relay = tempRelay(ini, overrides);
  relays.push(relay);
  const log = memoryLogger("doveauth");
  const nocreateFile = join(relay.dir, "chatmail-nocreate");
  const sock = relay.socket("doveauth");
  services.push(await startDoveauth(relay.config, { socketPath: sock, nocreateFile, log }));
  return { relay, log, sock, nocreateFile };
}

/** Checks a stored {PBKDF2} hash against `password` with node:crypto's synchronous PBKDF2 (independent code). */
function pbkdf2Matches(stored: string, password: string): boolean {
  const [, , salt, rounds, hex] = stored.slice("{PBKDF2}".length).split("$");
  return pbkdf2Sync(password, salt, Number(rounds), 20, "sha1").toString("hex") === hex;
}

const passdb = (pw: string, user: string) => `Lshared/passdb/${pw}"${user}\t${user}`;
const userdb = (user: string) => `Lshared/userdb/${user}\t${user}`;
const passwordFile = (relay: TempRelay, addr: string) => join(relay.config.mailboxesDir, addr, "password");

describe("doveauth over its socket", () => {
  it("answers N for an unknown user, F for unknown namespaces or types, N for foreign domains", async () => {
    const { sock } = await started();
    expect(await converse(sock, `H3\t2\t0\t\tauth\n${userdb(`foobar@${DOMAIN}`)}\n`)).toBe("N\n");
    expect(await converse(sock, "Lpriv/foo/x\nLshared/foo/x\nLshared/userdb/abcdefghi@other.org\n")).toBe(
      "F\nF\nN\n",
    );
  });

  it("creates the account at the first passdb lookup: PBKDF2 file, marker, JSON reply, log line", async () => {
    const { sock, relay, log } = await started();
    const addr = `abcdefghi@${DOMAIN}`;
    const reply = await converse(sock, `${passdb("q9mr3faue1", addr)}\n`);
    expect(reply.startsWith('O{"addr": "abcdefghi@chat.example.org", "home": "')).toBe(true);
    const record = JSON.parse(reply.slice(1));
    expect(record).toMatchObject({
      addr,
      home: join(relay.config.mailboxesDir, addr),
      uid: "vmail",
      gid: "vmail",
    });
    const stored = readFileSync(passwordFile(relay, addr), "latin1");
    expect(stored).toBe(record.password);
    expect(stored).toMatch(/^\{PBKDF2\}\$1\$[./0-9A-Za-z]{16}\$5000\$[0-9a-f]{40}$/);
    expect(pbkdf2Matches(stored, "q9mr3faue1")).toBe(true);
    expect(pbkdf2Matches(stored, "q9mr3faue2")).toBe(false);
    expect(readFileSync(join(relay.config.mailboxesDir, addr, "enforceE2EEincoming"), "utf8")).toBe("");
    expect(log.lines).toContain(`doveauth: Created address: ${addr}`);
    expect(await converse(sock, `${userdb(addr)}\n`)).toBe(reply);
  });

  it("returns the stored hash for a wrong password and never overwrites it", async () => {
    const { sock, relay } = await started();
    const addr = `someone12@${DOMAIN}`;
    const first = await converse(sock, `${passdb("rightpassword", addr)}\n`);
    const before = readFileSync(passwordFile(relay, addr), "latin1");
    const second = await converse(sock, `${passdb("wrongpassword", addr)}\n`);
    expect(second).toBe(first);
    expect(readFileSync(passwordFile(relay, addr), "latin1")).toBe(before);
  });

  it("unescapes the passdb key: the password may contain \", ', \\ and /", async () => {
    const { sock, relay } = await started();
    const key = `shared/passdb/laksjdlaksjdlak\\\\sjdlk\\"12j\\'3l1/k2j3123"some42123@${DOMAIN}`;
    const reply = await converse(sock, `L${key}\tsome42123@${DOMAIN}\n`);
    const record = JSON.parse(reply.slice(1));
    expect(record.home.endsWith(`${DOMAIN}/some42123@${DOMAIN}`)).toBe(true);
    const stored = readFileSync(passwordFile(relay, `some42123@${DOMAIN}`), "latin1");
    expect(pbkdf2Matches(stored, `laksjdlaksjdlak\\sjdlk"12j'3l1/k2j3123`)).toBe(true);
  });

  it("answers F for a key with a lone trailing backslash", async () => {
    const { sock } = await started();
    expect(await converse(sock, `Lshared/passdb/abc"user12345@${DOMAIN}\\\n`)).toBe("F\n");
  });

  it("treats an empty password file as no account and logs it", async () => {
    const { sock, relay, log } = await started();
    const addr = `emptyfile@${DOMAIN}`;
    mkdirSync(join(relay.config.mailboxesDir, addr), { recursive: true });
    writeFileSync(passwordFile(relay, addr), "");
    expect(await converse(sock, `${userdb(addr)}\n`)).toBe("N\n");
    expect(log.lines).toContain(`doveauth: ERROR password is empty for: ${addr}`);
  });

  it("lists every address directory on userdb iteration, then an empty line", async () => {
    const { sock } = await started();
    const c = await DictClient.open(sock);
    const addrs = Array.from({ length: 10 }, (_, i) => `asdf1234${i}@${DOMAIN}`);
    for (const a of addrs) expect((await c.request(passdb("q9mr3faue", a)))[0]).toBe("O");
    const out = await c.iterate("I0\t0\tshared/userdb/");
    expect(out).toBe(`${addrs.map((a) => `Oshared/userdb/${a}\t`).join("\n")}\n\n`);
    expect(await c.iterate("I0\t0\tshared/other/")).toBe("\n");
    c.close();
  });

  it("ends ten concurrent first logins of one address with exactly one password", async () => {
    const { sock, relay } = await started();
    const addr = `samesame1@${DOMAIN}`;
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => converse(sock, `${passdb(`password-${i}x`, addr)}\n`)),
    );
    const hashes = new Set(replies.map((r) => JSON.parse(r.slice(1)).password));
    expect(hashes.size).toBe(1);
    expect([...hashes][0]).toBe(readFileSync(passwordFile(relay, addr), "latin1"));
  });

  it("creates 50 x 5 different accounts concurrently", async () => {
    const { sock, relay } = await started({}, { accountCreationsPerMinute: 250 });
    // Local parts of exactly 9 characters: c<3-digit thread><digit>abcd.
    const local = (t: number, i: number) => `c${String(t).padStart(3, "0")}${i}abcd`;
    const batches = Array.from({ length: 50 }, (_, t) =>
      converse(
        sock,
        `${Array.from({ length: 5 }, (_, i) => passdb("q9mr3faue", `${local(t, i)}@${DOMAIN}`)).join("\n")}\n`,
      ),
    );
    const replies = await Promise.all(batches);
    expect(replies.every((r) => r.split("\n").filter((l) => l.startsWith("O")).length === 5)).toBe(true);
    expect(existsSync(passwordFile(relay, `${local(49, 4)}@${DOMAIN}`))).toBe(true);
  }, 120_000);

  it("refuses creation with a nocreate file but lets existing accounts log in", async () => {
    const { sock, nocreateFile, log } = await started();
    const existing = `existing1@${DOMAIN}`;
    expect((await converse(sock, `${passdb("q9mr3faue", existing)}\n`))[0]).toBe("O");
    writeFileSync(nocreateFile, "");
    expect(await converse(sock, `${passdb("zequ0Aimuchoodaechik", `newuser12@${DOMAIN}`)}\n`)).toBe("N\n");
    expect((await converse(sock, `${passdb("q9mr3faue", existing)}\n`))[0]).toBe("O");
    expect(
      log.lines.some((l) => l.includes("blocked account creation because") && l.includes("exists")),
    ).toBe(true);
  });

  it("refuses creation while the server is short of memory, but existing accounts keep working", async () => {
    const { sock, log } = await started({ min_available_memory: "99999999G" });
    expect(await converse(sock, `${passdb("q9mr3faue", `newuser12@${DOMAIN}`)}\n`)).toBe("N\n");
    expect(log.lines.some((l) => l.includes("registration rejected: available memory"))).toBe(true);
  });

  it("refuses creation while free disk space is below the minimum", async () => {
    const { sock, log } = await started({ min_free_disk_space: "99999999G" });
    expect(await converse(sock, `${passdb("q9mr3faue", `newuser12@${DOMAIN}`)}\n`)).toBe("N\n");
    expect(log.lines.some((l) => l.includes("registration rejected: free disk"))).toBe(true);
  });

  it("refuses creation while the load is above maxLoad1m", async () => {
    const { sock, log } = await started({}, { maxLoad1m: -1 });
    expect(await converse(sock, `${passdb("q9mr3faue", `newuser12@${DOMAIN}`)}\n`)).toBe("N\n");
    expect(log.lines.some((l) => l.includes("registration rejected: load avg"))).toBe(true);
  });

  it("answers N for ../ and / in addresses and writes nothing outside the mailboxes dir", async () => {
    const { sock, relay } = await started();
    const evil = [`../../evil1234@${DOMAIN}`, `a/b/cdefghij@${DOMAIN}`, `..@${DOMAIN}`];
    const out = await converse(sock, evil.map((a) => passdb("q9mr3faue", a)).join("\n") + "\n");
    expect(out).toBe("N\nN\nN\n");
    expect(existsSync(join(relay.dir, "evil1234@" + DOMAIN))).toBe(false);
    expect(existsSync(join(relay.config.mailboxesDir, "..", "..", `evil1234@${DOMAIN}`))).toBe(false);
  });
});

describe("doveauth creation limits", () => {
  /** A Doveauth core on a fresh relay with a clock the test moves. */
  function core(overrides = {}, hasher = boundedHasher()) {
    const relay = tempRelay({}, overrides);
    relays.push(relay);
    const log = memoryLogger("doveauth");
    const clock = { ms: 1_000_000 };
    const auth = new Doveauth(relay.config, {
      nocreateFile: join(relay.dir, "nocreate"),
      log,
      hasher,
      now: () => clock.ms,
    });
    const lookup = (user: string, pw: string, rip?: string) =>
      Promise.resolve(auth.handleLookup(`shared/passdb/${pw}"${user}${rip === undefined ? "" : `"${rip}`}`));
    return { relay, log, clock, lookup };
  }

  it("refuses a password longer than passwordMaxLength at first login without hashing it", async () => {
    let hashed = 0;
    const { relay, log, lookup } = core(
      { passwordMaxLength: 256 },
      {
        hash: (pw) => {
          hashed++;
          return boundedHasher().hash(pw);
        },
      },
    );
    expect(await lookup(`longpass1@${DOMAIN}`, "x".repeat(257))).toEqual({ found: false });
    expect(await lookup(`longpass2@${DOMAIN}`, "x".repeat(60_000))).toEqual({ found: false });
    expect(hashed).toBe(0);
    expect(existsSync(passwordFile(relay, `longpass1@${DOMAIN}`))).toBe(false);
    expect(log.lines).toContain(
      "doveauth: WARNING Password may be at most 256 characters long (passwordMaxLength)",
    );
    expect(await lookup(`longpass3@${DOMAIN}`, "x".repeat(256))).not.toBe("fail");
    expect(existsSync(passwordFile(relay, `longpass3@${DOMAIN}`))).toBe(true);
  });

  it("answers F (try later) while the hashing queue is full, and creates again once it drains", async () => {
    const release: Array<() => void> = [];
    const slow = boundedHasher(2, (pw) => new Promise((r) => release.push(() => r(`{PLAIN}${pw}`))));
    const { relay, log, lookup } = core({}, slow);
    const first = [lookup(`queued001@${DOMAIN}`, "q9mr3faue"), lookup(`queued002@${DOMAIN}`, "q9mr3faue")];
    expect(await lookup(`queued003@${DOMAIN}`, "q9mr3faue")).toBe("fail");
    expect(log.lines.some((l) => l.includes("registration delayed: 2 password hashes already queued"))).toBe(
      true,
    );
    for (const r of release.splice(0)) r();
    await Promise.all(first);
    const again = lookup(`queued003@${DOMAIN}`, "q9mr3faue");
    while (release.length === 0) await new Promise((r) => setImmediate(r));
    for (const r of release.splice(0)) r();
    expect(await again).not.toBe("fail");
    expect(readFileSync(passwordFile(relay, `queued003@${DOMAIN}`), "latin1")).toBe("{PLAIN}q9mr3faue");
  });

  it("allows a burst per client address, then answers F until the bucket refills", async () => {
    const { clock, log, lookup } = core({
      accountCreationsPerMinute: 100,
      accountCreationsPerMinutePerClient: 2,
    });
    const create = (n: number, rip: string) => lookup(`perclien${n}@${DOMAIN}`, "q9mr3faue", rip);
    expect(await create(1, "203.0.113.5")).not.toBe("fail");
    expect(await create(2, "203.0.113.5")).not.toBe("fail");
    expect(await create(3, "203.0.113.5")).toBe("fail");
    expect(log.lines).toContain(
      "doveauth: WARNING registration delayed: more than 2 new accounts a minute from 203.0.113.5 (accountCreationsPerMinutePerClient)",
    );
    expect(await create(4, "203.0.113.6")).not.toBe("fail");
    clock.ms += 29_000;
    expect(await create(3, "203.0.113.5")).toBe("fail");
    clock.ms += 1_000; // 30 s: one of two a minute is back
    expect(await create(3, "203.0.113.5")).not.toBe("fail");
  });

  it("limits creations in total, also when Dovecot passes no client address (old two-field key)", async () => {
    const { clock, relay, lookup } = core({
      accountCreationsPerMinute: 3,
      accountCreationsPerMinutePerClient: 3,
    });
    const create = (n: number, rip?: string) => lookup(`totallim${n}@${DOMAIN}`, "q9mr3faue", rip);
    expect(await create(1)).not.toBe("fail");
    expect(await create(2, "")).not.toBe("fail");
    expect(await create(3, "198.51.100.1")).not.toBe("fail");
    expect(await create(4, "198.51.100.2")).toBe("fail");
    expect(await create(4)).toBe("fail");
    expect(existsSync(passwordFile(relay, `totallim4@${DOMAIN}`))).toBe(false);
    clock.ms += 20_000; // one of three a minute
    expect(await create(4)).not.toBe("fail");
    expect(await create(5)).toBe("fail");
  });

  it("counts concurrent first logins of one address as one creation", async () => {
    const { lookup } = core({ accountCreationsPerMinute: 1 });
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => lookup(`onlyonce1@${DOMAIN}`, "q9mr3faue")),
    );
    expect(replies.every((r) => r !== "fail")).toBe(true);
    expect(await lookup(`onlyonce2@${DOMAIN}`, "q9mr3faue")).toBe("fail");
  });

  it("hands back an existing SHA512-CRYPT hash unchanged (accounts of adopted cmdeploy relays)", async () => {
    const { relay, lookup } = core({ accountCreationsPerMinute: 1 });
    const addr = `oldrelay1@${DOMAIN}`;
    const hash = "{SHA512-CRYPT}$6$abcdefghijklmnop$" + "x".repeat(86);
    mkdirSync(join(relay.config.mailboxesDir, addr));
    writeFileSync(passwordFile(relay, addr), hash);
    const reply = (await lookup(addr, "whatever-password")) as { value: string };
    expect(JSON.parse(reply.value).password).toBe(hash);
  });
});

describe("parseAuthKey", () => {
  it("reads the client address from a third field and accepts keys without it", () => {
    expect(parseAuthKey(`shared/passdb/pa\\"ss"u@x"2001:db8::1`)).toEqual({
      type: "passdb",
      password: 'pa"ss',
      user: "u@x",
      client: "2001:db8::1",
    });
    expect(parseAuthKey(`shared/passdb/pass"u@x`)).toEqual({
      type: "passdb",
      password: "pass",
      user: "u@x",
      client: undefined,
    });
  });
});

describe("creationRefusal", () => {
  const base = {
    inviteTokens: [] as string[],
    passwordMinLength: 9,
    passwordMaxLength: 20,
    usernameMinLength: 9,
    usernameMaxLength: 9,
  };
  const no = { exists: false, path: "/etc/chatmail-nocreate" };

  it.each([
    [`a1234@x`, false],
    [`012345@x`, true],
    [`0123456@x`, true],
    [`0123456789@x`, true],
    [`0123456789x@x`, false],
  ])("with usernames of 6 to 10 characters, %s is allowed: %s", (addr, allowed) => {
    const config = { ...base, usernameMinLength: 6, usernameMaxLength: 10 };
    expect(creationRefusal(config, addr, "q9mr3faue", no) === undefined).toBe(allowed);
  });

  it.each([
    ["abc123", true],
    ["a.b-c_d", true],
    ["Abc123", false],
    ["ABCDEFG", false],
    ["a b cde", false],
    ["abc+def", false],
    ["abc!def", false],
    ["abc\\def", false],
  ])("with the local part %s, creation is allowed: %s", (local, allowed) => {
    const config = { ...base, usernameMinLength: 3 };
    expect(creationRefusal(config, `${local}@x`, "q9mr3faue", no) === undefined).toBe(allowed);
  });

  it("refuses addresses with more than one @", () => {
    expect(creationRefusal({ ...base, usernameMinLength: 3 }, "ab@cdef@x", "q9mr3faue", no)).toContain(
      "not a proper e-mail address",
    );
  });

  it("refuses passwords longer than passwordMaxLength, the invite token not counted", () => {
    expect(creationRefusal(base, "abcdefghi@x", "x".repeat(21), no)).toBe(
      "Password may be at most 20 characters long (passwordMaxLength)",
    );
    expect(creationRefusal(base, "abcdefghi@x", "x".repeat(20), no)).toBeUndefined();
    const config = { ...base, inviteTokens: ["s3cr3ttok"] };
    expect(creationRefusal(config, "abcdefghi@x", `s3cr3ttok${"x".repeat(20)}`, no)).toBeUndefined();
  });

  it("refuses passwords shorter than passwordMinLength", () => {
    expect(creationRefusal(base, "abcdefghi@x", "12345678", no)).toBe(
      "Password needs to be at least 9 characters long",
    );
    expect(creationRefusal(base, "abcdefghi@x", "123456789", no)).toBeUndefined();
  });

  // The invite-token table of upstream's unreleased PR #600 (chatmail/relay branch invite-only,
  // chatmaild/src/chatmaild/tests/test_doveauth.py, test_nocreate_file): (nocreate file, invite tokens,
  // password) -> created?
  it.each([
    [false, ["asdf"], "asdfasdmaimfelsgwerw", true],
    [false, ["asdf"], "z9873240187420913798", false],
    [false, [], "dsaiujfw9fjiwf9w", true],
    [false, ["asdf"], "z987324018742asdf0913798", false],
    [false, ["as", "df"], "asj0wiefkj0ofkeefok", true],
    [false, ["as", "df"], "dfj0wiefkj0ofkeefok", true],
    [false, ["as", "df"], "j0wiefkj0ofas dfkeefok", false],
    [true, ["asdf"], "asdfmosadkdkfwdofkw", false],
    [true, ["asdf"], "z9873240187420913798", false],
    [true, [], "dsaiujfw9fjiwf9w", false],
  ])(
    "invite case: nocreate %s, tokens %j, password %s -> created %s",
    (nocreate, tokens, password, created) => {
      const refusal = creationRefusal({ ...base, inviteTokens: tokens }, `newuser12@${DOMAIN}`, password, {
        exists: nocreate,
        path: "/x",
      });
      expect(refusal === undefined).toBe(created);
    },
  );

  it("does not count the invite token towards the minimum password length", () => {
    const config = { ...base, inviteTokens: ["s3cr3ttok"] };
    expect(creationRefusal(config, "abcdefghi@x", "s3cr3ttok12345678", no)).toContain("at least 9");
    expect(creationRefusal(config, "abcdefghi@x", "s3cr3ttok123456789", no)).toBeUndefined();
  });
});

describe("the invite table end to end over the socket", () => {
  it.each([
    [false, ["asdfasdfasdf"], "asdfasdfasdfsdmaimfelsgwerw", true],
    [false, ["asdfasdfasdf"], "z9873240187420913798", false],
    [true, ["asdfasdfasdf"], "asdfasdfasdfsdmaimfelsgwerw", false],
  ])("nocreate %s, tokens %j, password %s -> account %s", async (nocreate, tokens, password, created) => {
    const { sock, nocreateFile } = await started({}, { inviteTokens: tokens });
    if (nocreate) writeFileSync(nocreateFile, "");
    await converse(sock, `${passdb(password, `newuser12@${DOMAIN}`)}\n`);
    expect((await converse(sock, `${userdb(`newuser12@${DOMAIN}`)}\n`))[0]).toBe(created ? "O" : "N");
  });
});

describe("Doveauth", () => {
  it("can be used without a socket (the core the Lua/HTTP auth of Dovecot 2.4 would call)", async () => {
    const relay = tempRelay();
    relays.push(relay);
    const core = new Doveauth(relay.config, {
      nocreateFile: join(relay.dir, "nocreate"),
      log: memoryLogger(),
    });
    expect(await core.lookupPassdb(`abcdefghi@${DOMAIN}`, "q9mr3faue")).toMatchObject({ uid: "vmail" });
    expect(await core.listUsers()).toEqual([`abcdefghi@${DOMAIN}`]);
  });

  it("splits keys on unescaped quotes", () => {
    expect(splitAndUnescape('a\\"b"c')).toEqual(['a"b', "c"]);
    expect(() => splitAndUnescape("abc\\")).toThrow("lone trailing backslash");
  });

  it.each(["", "../some@x", "..", ".", "a\0b@x", "no-at-sign"])("rejects the address %j", (addr) => {
    expect(() => requireAddress(addr)).toThrow("invalid address");
  });
});
