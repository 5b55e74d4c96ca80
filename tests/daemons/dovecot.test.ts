// Integration with a real Dovecot (Debian's packages, see .ci/debian-packages), started by the test without
// systemd: first IMAP login creates the account, a wrong password fails, METADATA round trip, and the LMTP push
// hook reaches chatmail-metadata, which posts the device token to the (local) notification server.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDaemonBundle } from "../../components/assets";
import {
  preparePaths,
  startDovecot,
  stopDovecot,
  writeDovecotConfig,
  NOBODY_UID,
  type DovecotPaths,
} from "./dovecot";
import { DOMAIN, freePort, tempRelay, type TempRelay } from "./helpers";
import { ImapClient, lmtpDeliver } from "./mailclients";

const DEADLINE_MS = 20_000;

async function waitFor<T>(probe: () => T | undefined | false, what: string): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - start > DEADLINE_MS) throw new Error(`${what}: not within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("chatmaild with Dovecot", () => {
  let relay: TempRelay;
  let paths: DovecotPaths;
  let daemons: ChildProcess;
  let daemonLog = "";
  let dovecotConf: string;
  let imapPort: number;
  let lmtpPort: number;
  let push: Server;
  const pushed: string[] = [];

  beforeAll(async () => {
    relay = tempRelay();
    paths = preparePaths(relay.dir, relay.config.mailboxesDir);
    push = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        pushed.push(body);
        res.end();
      });
    });
    await new Promise<void>((r) => push.listen(0, "127.0.0.1", r));
    const pushUrl = `http://127.0.0.1:${(push.address() as { port: number }).port}/notify`;
    const ini = join(relay.dir, "chatmail.ini");
    writeFileSync(
      ini,
      `[params]\nmail_domain = ${DOMAIN}\nmailboxes_dir = ${relay.config.mailboxesDir}\nmax_load_1m = 99999\n` +
        `min_available_memory = 0\nmin_free_disk_space = 0\nnotification_url = ${pushUrl}\n` +
        "account_creations_per_minute_per_client = 1\n",
    );
    const bundle = writeDaemonBundle(join(relay.dir, "chatmaild.js"));
    // umask 000: Dovecot's auth and mail processes (other users) must be able to connect to the sockets.
    daemons = spawn(
      "/bin/sh",
      [
        "-c",
        'umask 000; exec "$0" "$@"',
        process.execPath,
        bundle,
        ini,
        "doveauth",
        "lastlogin",
        "metadata",
        "--doveauth-socket",
        paths.doveauthSocket,
        "--metadata-socket",
        paths.metadataSocket,
        "--lastlogin-socket",
        paths.lastloginSocket,
        "--nocreate-file",
        join(relay.dir, "nocreate"),
        "--mail-user",
        String(NOBODY_UID),
      ],
      { uid: NOBODY_UID, gid: NOBODY_UID, stdio: ["ignore", "ignore", "pipe"] },
    );
    daemons.stderr?.on("data", (d) => (daemonLog += d));
    await waitFor(() => (daemonLog.match(/ started/g) ?? []).length === 3, "chatmaild services started");
    imapPort = await freePort();
    lmtpPort = await freePort();
    dovecotConf = writeDovecotConfig(paths, relay.config, imapPort, lmtpPort);
    startDovecot(dovecotConf, join(relay.dir, "dovecot.log"));
    await waitFor(() => existsSync(join(paths.runDir, "dovecot", "master.pid")), "dovecot master.pid");
  });

  afterAll(async () => {
    if (dovecotConf) stopDovecot(dovecotConf);
    daemons?.kill("SIGTERM");
    push?.close();
    await new Promise((r) => setTimeout(r, 300));
    relay?.cleanup();
  });

  const addr = `abcdef123@${DOMAIN}`;
  const password = 'Pa55w0rd-with"quote';

  async function login(user: string, pw: string): Promise<{ client: ImapClient; ok: boolean; text: string }> {
    const client = await ImapClient.connect(imapPort);
    const r = await client.command(`LOGIN "${user}" "${pw.replace(/(["\\])/g, "\\$1")}"`);
    return { client, ...r };
  }

  it("creates the account at the first IMAP login", async () => {
    const { client, ok, text } = await login(addr, password);
    expect(ok, `${text}\n${readFileSync(join(relay.dir, "dovecot.log"), "utf8")}`).toBe(true);
    const pw = readFileSync(join(relay.config.mailboxesDir, addr, "password"), "latin1");
    expect(pw).toMatch(/^\{PBKDF2\}\$1\$[./0-9A-Za-z]{16}\$5000\$[0-9a-f]{40}$/);
    expect(statSync(join(relay.config.mailboxesDir, addr, "password")).uid).toBe(NOBODY_UID);
    expect(daemonLog).toContain(`Created address: ${addr}`);
    expect((await client.command("SELECT INBOX")).ok).toBe(true);
    client.close();
  });

  it("refuses a wrong password and leaves the stored hash alone", async () => {
    const before = readFileSync(join(relay.config.mailboxesDir, addr, "password"), "latin1");
    const { client, ok, text } = await login(addr, "wrong-password");
    expect(ok).toBe(false);
    expect(text).toContain("AUTHENTICATIONFAILED");
    client.close();
    expect(readFileSync(join(relay.config.mailboxesDir, addr, "password"), "latin1")).toBe(before);
    const again = await login(addr, password);
    expect(again.ok).toBe(true);
    again.client.close();
  });

  it("logs in an existing SHA512-CRYPT account of an adopted cmdeploy relay", async () => {
    const old = `oldrelay1@${DOMAIN}`;
    const hash = execFileSync("openssl", ["passwd", "-6", "old-relay-password"]).toString().trim();
    const dir = join(relay.config.mailboxesDir, old);
    mkdirSync(dir);
    writeFileSync(join(dir, "password"), `{SHA512-CRYPT}${hash}`);
    chownSync(dir, NOBODY_UID, NOBODY_UID);
    chownSync(join(dir, "password"), NOBODY_UID, NOBODY_UID);
    const wrong = await login(old, "wrong-password");
    expect(wrong.ok).toBe(false);
    wrong.client.close();
    const { client, ok, text } = await login(old, "old-relay-password");
    expect(ok, text).toBe(true);
    client.close();
  });

  it("refuses to create an account with a password over passwordMaxLength", async () => {
    const { client, ok } = await login(`longpass1@${DOMAIN}`, "x".repeat(257));
    expect(ok).toBe(false);
    client.close();
    expect(existsSync(join(relay.config.mailboxesDir, `longpass1@${DOMAIN}`, "password"))).toBe(false);
  });

  it("passes the client address, so the per-client limit answers a temporary failure", async () => {
    const authTest = (user: string) =>
      spawnSync(
        "/usr/bin/doveadm",
        ["-c", dovecotConf, "auth", "test", "-x", "rip=192.0.2.44", user, "q9mr3faue-rip"],
        { encoding: "utf8" },
      );
    const first = authTest(`ripfirst1@${DOMAIN}`);
    expect(first.status, first.stdout + first.stderr).toBe(0);
    const second = authTest(`ripsecond@${DOMAIN}`);
    expect(second.status).not.toBe(0);
    expect(second.stdout).toContain("code=temp_fail");
    await waitFor(
      () =>
        daemonLog.includes(
          "more than 1 new accounts a minute from 192.0.2.44 (accountCreationsPerMinutePerClient)",
        ),
      "the per-client refusal in the log",
    );
    expect(existsSync(join(relay.config.mailboxesDir, `ripsecond@${DOMAIN}`, "password"))).toBe(false);
  });

  it("refuses to create an address with a too short local part", async () => {
    const { client, ok } = await login(`short@${DOMAIN}`, "long-enough-password");
    expect(ok).toBe(false);
    client.close();
    expect(existsSync(join(relay.config.mailboxesDir, `short@${DOMAIN}`, "password"))).toBe(false);
  });

  it("lists the accounts through Dovecot's userdb iteration (doveadm user '*')", () => {
    const out = execFileSync("/usr/bin/doveadm", ["-c", dovecotConf, "user", "*"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(out.toString().split("\n")).toContain(addr);
  });

  it("records the login day through the last_login plugin", async () => {
    const path = join(relay.config.mailboxesDir, addr, "password");
    const day = Math.floor(Date.now() / 1000 / 86400) * 86400;
    await waitFor(
      () => Math.trunc(statSync(path).mtimeMs / 1000) === day,
      "password mtime at today's midnight",
    );
  });

  it("round-trips the device token and serves server metadata", async () => {
    const { client, ok } = await login(addr, password);
    expect(ok).toBe(true);
    expect((await client.command("CAPABILITY")).text).toContain("METADATA");
    const set = await client.command('SETMETADATA INBOX (/private/devicetoken "tok-device-1")');
    expect(set.ok, set.text).toBe(true);
    const get = await client.command("GETMETADATA INBOX /private/devicetoken");
    expect(get.text).toContain("tok-device-1");
    const iroh = await client.command('GETMETADATA "" /shared/vendor/deltachat/irohrelay');
    expect(iroh.text).toContain(`https://${DOMAIN}`);
    const max = await client.command('GETMETADATA "" /shared/vendor/deltachat/maxsmtprecipients');
    expect(max.text).toContain("1000");
    client.close();
  });

  it("notifies the device when LMTP delivers a new message (push hook)", async () => {
    const reply = await lmtpDeliver(
      lmtpPort,
      `sender123@${DOMAIN}`,
      addr,
      `From: sender123@${DOMAIN}\nTo: ${addr}\nSubject: [...]\nMessage-ID: <push-test@${DOMAIN}>\n\nhello\n`,
    );
    expect(reply).toMatch(/^250/m);
    await waitFor(() => pushed.includes("tok-device-1"), "notification POST with the device token");
  });
});
