// The tools' streaming, end to end on this machine: a fake ssh on PATH runs each remote script with sh against
// the temporary root of the host it is asked for, so backup -> encrypted file -> restore and the move's
// old server -> this machine -> new server run the real scripts, the real encryption and the real tar reader.
// Every refusal (wrong key, damaged or cut file, keys onto a deployed server, a failed archive on the old
// server) leaves the receiving server as it was.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { manifestText, PARTS, type Part } from "../../core/state";
import {
  backupToFile,
  copyBetween,
  dkimKeyFromFile,
  readManifest,
  restoreFromFile,
  stopMail,
  TransferError,
} from "../../tools/state/transfer";
import { startRemote, type SshTarget } from "../../tools/state/ssh";
import { configFor, planFor } from "../plan/helpers";
import {
  ALICE,
  calls,
  cleanupServers,
  deployed,
  DOMAIN,
  FAKE_SSH,
  fakeRelay,
  listing,
  MAILBOXES,
  NOT_STATE,
  PATH_WITH_FAKES,
  put,
  running,
  server,
  without,
  type Server,
} from "./helpers";

const config = configFor();
const plan = planFor();
const PASS = "correct horse battery staple";
const CHEAP = { scrypt: { N: 1024, r: 8, p: 1 }, chunkSize: 4096 };

const saved = { PATH: process.env.PATH, FAKE_SSH: process.env.FAKE_SSH };
beforeAll(() => {
  process.env.PATH = PATH_WITH_FAKES;
  process.env.FAKE_SSH = FAKE_SSH;
});
afterAll(() => {
  process.env.PATH = saved.PATH;
  if (saved.FAKE_SSH === undefined) delete process.env.FAKE_SSH;
  else process.env.FAKE_SSH = saved.FAKE_SSH;
  cleanupServers();
});

const at = (s: Server | string): SshTarget => ({
  host: typeof s === "string" ? s : s.name,
  port: 22,
  user: "root",
});
const manifest = (parts: readonly Part[]) =>
  manifestText({
    mailDomain: DOMAIN,
    mailboxesDir: MAILBOXES,
    parts,
    created: "2026-01-01T00:00:00Z",
    tool: "test",
  });
const sshCalls = () =>
  existsSync(join(FAKE_SSH, "ssh.log")) ? readFileSync(join(FAKE_SSH, "ssh.log"), "utf8").split("\n") : [];

async function backup(src: Server, parts: readonly Part[] = PARTS, out = join(src.dir, "relay.bak")) {
  const r = await backupToFile({
    source: at(src),
    config,
    parts,
    manifest: manifest(parts),
    out,
    passphrase: PASS,
    crypto: CHEAP,
  });
  return { ...r, out };
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TransferError);
    return (e as Error).message;
  }
  throw new Error("no error");
}

describe("backup and restore", () => {
  it("writes an encrypted file (mode 0600, no plaintext) that restores every file onto a fresh server", async () => {
    const src = server();
    fakeRelay(src);
    const b = await backup(src);
    expect(statSync(b.out).mode & 0o777).toBe(0o600);
    expect(existsSync(`${b.out}.tmp`)).toBe(false);
    expect(b.fileBytes).toBe(statSync(b.out).size);
    const bytes = readFileSync(b.out).toString("latin1");
    for (const plain of ["PRIVATE KEY", "PBKDF2", ALICE, "devicetoken", "msg 0", DOMAIN])
      expect(bytes, plain).not.toContain(plain);
    expect(b.counts.keys).toMatchObject({ files: 9 });
    expect(b.counts.accounts.files).toBe(8);
    expect([...b.counts.accounts.accounts].sort()).toEqual([ALICE, `bob@${DOMAIN}`]);
    expect(b.counts.mailboxes.files).toBe(12);
    expect(b.counts.mailboxes.bytes).toBeGreaterThan(50);

    expect(await readManifest(b.out, PASS)).toMatchObject({
      mailDomain: DOMAIN,
      parts: ["keys", "accounts", "mailboxes"],
    });
    const dst = server();
    const r = await restoreFromFile({
      dest: at(dst),
      config,
      plan,
      path: b.out,
      passphrase: PASS,
      force: false,
    });
    expect(r.parts).toEqual(PARTS);
    expect(r.serverLine).toMatch(/^restore: placed keys: 9 files, accounts: 8 files, mailboxes: 12 files/);
    expect(listing(dst)).toEqual(without(listing(src), NOT_STATE));
  });

  it("restores only the parts asked for, and refuses parts the backup does not hold", async () => {
    const src = server();
    fakeRelay(src);
    const b = await backup(src, ["keys", "accounts"]);
    const dst = server();
    const r = await restoreFromFile({
      dest: at(dst),
      config,
      plan,
      path: b.out,
      passphrase: PASS,
      parts: ["accounts"],
      force: false,
    });
    expect(r.parts).toEqual(["accounts"]);
    expect(existsSync(join(dst.root, PATHS.dkimPrivateKey))).toBe(false);
    expect(existsSync(join(dst.root, MAILBOXES, ALICE, "password"))).toBe(true);
    expect(
      await failure(
        restoreFromFile({
          dest: at(dst),
          config,
          plan,
          path: b.out,
          passphrase: PASS,
          parts: ["mailboxes"],
          force: false,
        }),
      ),
    ).toBe("the archive holds no mailboxes (it holds keys, accounts; backup --mailboxes takes them)");
  });

  it("refuses a wrong passphrase before it connects, and a backup of another relay", async () => {
    const src = server();
    fakeRelay(src);
    const b = await backup(src, ["keys"]);
    const dst = server();
    const before = sshCalls().length;
    expect(
      await failure(
        restoreFromFile({
          dest: at(dst),
          config,
          plan,
          path: b.out,
          passphrase: "not the passphrase!",
          force: true,
        }),
      ),
    ).toMatch(/passphrase in the key file is not the one this backup was made with/);
    const other = configFor({ mail_domain: "other.example.net" });
    expect(
      await failure(
        restoreFromFile({ dest: at(dst), config: other, plan, path: b.out, passphrase: PASS, force: true }),
      ),
    ).toBe(`${b.out} is a backup of ${DOMAIN}, but the stack's relay is other.example.net`);
    expect(sshCalls().length).toBe(before);
    expect(listing(dst)).toEqual([]);
  });

  it("changes nothing on the server for a damaged or cut file, though the chunks before the damage went over", async () => {
    const src = server();
    fakeRelay(src);
    const b = await backup(src);
    const file = readFileSync(b.out);
    const flipped = Buffer.from(file);
    flipped[Math.floor(file.length * 0.8)] ^= 0x55;
    const cases: Array<[string, Buffer, RegExp]> = [
      ["a flipped byte", flipped, /failed authentication: the file is damaged/],
      [
        "cut short",
        file.subarray(0, file.length - 100),
        /failed authentication: the file is damaged or cut short/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      const path = join(src.dir, `${what}.bak`);
      writeFileSync(path, bytes, { mode: 0o600 });
      const dst = server();
      put(dst, `${MAILBOXES}/${ALICE}/password`, "{PBKDF2}current");
      running(dst, "dovecot.service");
      const before = listing(dst);
      const m = await failure(
        restoreFromFile({ dest: at(dst), config, plan, path, passphrase: PASS, force: false }),
      );
      expect(m, what).toMatch(message);
      expect(m, what).toMatch(
        /; on root@server-\d+: the archive stream ended before its end mark: .*; nothing was changed$/,
      );
      expect(listing(dst), what).toEqual(before);
      expect(
        calls(dst).filter((l) => /systemctl (stop|start)/.test(l)),
        what,
      ).toEqual([]);
    }
  });

  it("passes the server's refusal of keys on a deployed relay on whole", async () => {
    const src = server();
    fakeRelay(src);
    const b = await backup(src, ["keys", "accounts"]);
    const dst = server();
    deployed(dst);
    const before = listing(dst);
    expect(
      await failure(
        restoreFromFile({ dest: at(dst), config, plan, path: b.out, passphrase: PASS, force: false }),
      ),
    ).toMatch(/^refused: this server was deployed already .* dkimPrivateKey .* Nothing was changed\.$/);
    expect(listing(dst)).toEqual(before);
  });

  it("writes no file when the server cannot be reached or its archive fails", async () => {
    const out = join(FAKE_SSH, "never.bak");
    expect(
      await failure(
        backupToFile({
          source: at("nowhere"),
          config,
          parts: PARTS,
          manifest: manifest(PARTS),
          out,
          passphrase: PASS,
          crypto: CHEAP,
        }),
      ),
    ).toMatch(/^ssh to root@nowhere failed: ssh: connect to host nowhere port 22: Connection refused$/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.tmp`)).toBe(false);
  });

  it("prints the DKIM key of a backup, and says when it holds none", async () => {
    const src = server();
    fakeRelay(src);
    const b = await backup(src, ["keys"]);
    expect(await dkimKeyFromFile(b.out, PASS)).toBe(
      readFileSync(join(src.root, PATHS.dkimPrivateKey), "utf8"),
    );
    const c = await backup(src, ["accounts"], join(src.dir, "accounts.bak"));
    expect(await failure(dkimKeyFromFile(c.out, PASS))).toBe(`${c.out} holds no keys (it holds accounts)`);
  });
});

describe("a remote script", () => {
  it("keeps what it printed before anyone read it, also after it exited (the backup derives its key first)", async () => {
    const s = server();
    const remote = startRemote(at(s), "root=\nprintf 'printed early'");
    remote.child.stdin.end();
    expect(await remote.done).toEqual({ code: 0, stderr: "" });
    await new Promise((r) => setTimeout(r, 200));
    const chunks: Buffer[] = [];
    for await (const c of remote.output) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("printed early");
  });
});

describe("move", () => {
  it("copies keys old -> new, then, with mail stopped on the old server, the accounts and mailboxes", async () => {
    const old = server();
    fakeRelay(old);
    running(old, "postfix.service", "dovecot.service", "chatmaild.service");
    const fresh = server();
    const keys = await copyBetween({
      source: at(old),
      dest: at(fresh),
      config,
      plan,
      parts: ["keys"],
      manifest: manifest(["keys"]),
    });
    expect(keys.counts.keys.files).toBe(9);
    expect(keys.serverLine).toMatch(/^restore: placed keys: 9 files/);
    expect(readFileSync(join(fresh.root, PATHS.dkimPrivateKey))).toEqual(
      readFileSync(join(old.root, PATHS.dkimPrivateKey)),
    );

    // pulumi up on the new server (acceptMail false): deployed, chatmaild runs, Postfix and Dovecot do not.
    deployed(fresh);
    running(fresh, "chatmaild.service");
    const stopped = await stopMail({ target: at(old), config, timeoutSeconds: 5 });
    expect(stopped.ok).toBe(true);
    expect(stopped.line).toMatch(/^stop-mail: SMTP closed, no mail for chat\.example\.org queued/);
    expect(calls(old)).toContain("postconf -e master_service_disable=inet");

    const rest = await copyBetween({
      source: at(old),
      dest: at(fresh),
      config,
      plan,
      parts: ["accounts", "mailboxes"],
      manifest: manifest(["accounts", "mailboxes"]),
    });
    expect(rest.counts.accounts.accounts.size).toBe(2);
    expect(without(listing(fresh), ["/var/lib/chatmail-deploy"])).toEqual(without(listing(old), NOT_STATE));
    // chatmaild was stopped for the move into place and runs again.
    expect(calls(fresh).filter((l) => /systemctl (stop|start)/.test(l))).toEqual([
      "systemctl stop chatmaild.service",
      "systemctl start chatmaild.service",
    ]);
  });

  it("changes nothing on the new server when the old one cannot be reached, and reports the new one's refusal", async () => {
    const fresh = server();
    const m = await failure(
      copyBetween({
        source: at("gone"),
        dest: at(fresh),
        config,
        plan,
        parts: ["keys"],
        manifest: manifest(["keys"]),
      }),
    );
    expect(m).toMatch(
      /^ssh to root@gone failed: .*Connection refused; on root@server-\d+: the archive stream is damaged or cut short \(tar failed\); nothing was changed$/,
    );
    expect(readdirSync(fresh.root)).toEqual([]);

    const old = server();
    fakeRelay(old);
    const usedBefore = server();
    deployed(usedBefore);
    const before = listing(usedBefore);
    expect(
      await failure(
        copyBetween({
          source: at(old),
          dest: at(usedBefore),
          config,
          plan,
          parts: ["keys"],
          manifest: manifest(["keys"]),
        }),
      ),
    ).toMatch(/^refused: this server was deployed already/);
    expect(listing(usedBefore)).toEqual(before);
  });
});
