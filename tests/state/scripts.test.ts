// The archive and restore scripts, run for real with sh, tar, find and mv against temporary roots (the `root=`
// prefix) with fake systemctl, user tools and chown on PATH: a round trip keeps every file, mode, mtime, owner
// name and hard link; the parts carry exactly their files; missing paths are skipped; and a refused, cut,
// damaged, foreign or uncommitted stream changes nothing.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { compileSteps } from "../../core/plan/steps";
import { user } from "../../core/plan/units";
import {
  archiveScript,
  COMMIT_MEMBER,
  KEYS_REFUSAL,
  MANIFEST_MEMBER,
  manifestText,
  PARTS,
  REFUSED_EXIT,
  restoreScript,
  stepBody,
  type Part,
} from "../../core/state";
import { commitTar } from "../../tools/state/tar";
import { configFor, planFor } from "../plan/helpers";
import {
  ACCOUNT_FILES,
  active,
  ALICE,
  BOB,
  calls,
  cleanupServers,
  deployed,
  DOMAIN,
  fakeRelay,
  listing,
  MAIL_FILES,
  MAILBOXES,
  NOT_STATE,
  opendkimIds,
  paths,
  put,
  running,
  runScript,
  server,
  setSwitch,
  T0,
  without,
  type Server,
} from "./helpers";

afterAll(cleanupServers);

const config = configFor();
const plan = planFor();
const selfSigned = {
  config: configFor({ tls_mode: "self-signed" }),
  plan: planFor({ tls_mode: "self-signed" }),
};

const manifest = (parts: readonly Part[], domain = DOMAIN) =>
  manifestText({
    mailDomain: domain,
    mailboxesDir: MAILBOXES,
    parts,
    created: "2026-01-01T00:00:00Z",
    tool: "test",
  });

/** The archive script's tar stream from `s`. */
function archive(s: Server, parts: readonly Part[], c = config): Buffer {
  const r = runScript(s, archiveScript({ config: c, parts, manifest: manifest(parts, c.mailDomain) }));
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout;
}

/** The stream as the tool sends it: the archive, then the commit member. */
const committed = (stream: Buffer) => Buffer.concat([stream, commitTar(T0)]);

function restore(
  s: Server,
  input: Buffer,
  parts: readonly Part[],
  opts: { force?: boolean; c?: typeof selfSigned } = {},
) {
  const { config: c, plan: p } = opts.c ?? { config, plan };
  return runScript(s, restoreScript({ config: c, plan: p, parts, force: opts.force ?? false }), input);
}

/** Member names of a tar stream (several archives one after the other). */
function members(stream: Buffer): string[] {
  const r = spawnSync("tar", ["-t", "-i", "-f", "-"], { input: stream, encoding: "buffer" });
  expect(r.status).toBe(0);
  return r.stdout
    .toString()
    .split("\n")
    .filter((l) => l !== "");
}

const stagingLeft = (s: Server) =>
  [join(s.root, "/home/vmail/mail"), join(s.root, "/home/vmail"), join(s.root, "/home"), s.root].flatMap(
    (d) => (existsSync(d) ? readdirSync(d).filter((n) => n.startsWith(".chatmail-restore")) : []),
  );

describe("the archive script", () => {
  it("writes the manifest first, then each part's files named <part>/<place>/<path>, and nothing else", () => {
    const s = server();
    fakeRelay(s);
    const names = members(archive(s, PARTS));
    expect(names[0]).toBe(MANIFEST_MEMBER);
    for (const n of names.slice(1)) expect(n).toMatch(/^(keys|accounts|mailboxes)\/(root|mail)\//);
    expect(names).toEqual(
      expect.arrayContaining([
        "keys/root/etc/dkimkeys/",
        "keys/root/etc/dkimkeys/opendkim.private",
        "keys/root/var/lib/acme/accounts/acme-v02.api.letsencrypt.org%2fdirectory/abc/privkey",
        `keys/root/var/lib/acme/live/${DOMAIN}`,
        "accounts/root/etc/chatmail-nocreate",
        ...ACCOUNT_FILES.map((f) => `accounts/mail/${f}`),
        "accounts/mail/pending_notifications/0123456789abcdef",
        ...MAIL_FILES.map((f) => `mailboxes/mail/${f}`),
        `mailboxes/mail/${ALICE}/.Sent/password`,
      ]),
    );
    // No state of another kind, and no file twice.
    for (const n of names) {
      expect(n).not.toMatch(/KeyTable|acme\/tmp|main\.cf|not-an-account|chatmail-deploy/);
      expect(n).not.toMatch(/^mailboxes\/mail\/[^/]+\/(password|enforceE2EEincoming|metadata\.json)$/);
    }
    expect(new Set(names).size).toBe(names.length);
  });

  it("keeps owner names and the links of acmetool and Dovecot", () => {
    const s = server();
    fakeRelay(s);
    const r = spawnSync("tar", ["-tv", "-i", "-f", "-"], { input: archive(s, PARTS), encoding: "buffer" });
    const lines = r.stdout.toString().split("\n");
    if (opendkimIds() !== undefined)
      expect(lines.find((l) => l.endsWith("opendkim.private"))).toMatch(/ opendkim\/opendkim /);
    expect(lines.find((l) => l.includes(`live/${DOMAIN}`))).toMatch(/-> \.\.\/certs\/c1$/);
    expect(lines.find((l) => l.includes(".Sent/cur/1600"))).toMatch(/link to mailboxes\/mail\/.*\/cur\//);
  });

  it("leaves out the mailboxes unless asked, and the account files when only mailboxes are asked", () => {
    const s = server();
    fakeRelay(s);
    const keysAccounts = members(archive(s, ["keys", "accounts"]));
    expect(keysAccounts.filter((n) => n.startsWith("mailboxes/"))).toEqual([]);
    expect(
      keysAccounts.filter((n) => /\/(cur|new|tmp|\.Sent)\b|dovecot-uidlist|maildirsize/.test(n)),
    ).toEqual([]);
    expect(keysAccounts).toContain(`accounts/mail/${ALICE}/password`);

    const mailOnly = members(archive(s, ["mailboxes"]));
    expect(mailOnly.filter((n) => !n.startsWith("mailboxes/") && n !== MANIFEST_MEMBER)).toEqual([]);
    expect(mailOnly).toContain(`mailboxes/mail/${ALICE}/.Sent/password`);
    expect(mailOnly).not.toContain(`mailboxes/mail/${ALICE}/password`);

    const keys = members(archive(s, ["keys"]));
    expect(keys.every((n) => n === MANIFEST_MEMBER || n.startsWith("keys/"))).toBe(true);
  });

  it("skips what a server does not have: no ACME state, no nocreate file, no account, nothing at all", () => {
    const s = server();
    put(s, `${MAILBOXES}/${ALICE}/password`, "{PBKDF2}x");
    expect(members(archive(s, PARTS))).toEqual([
      MANIFEST_MEMBER,
      `accounts/mail/${ALICE}/`,
      `accounts/mail/${ALICE}/password`,
      `mailboxes/mail/${ALICE}/`,
    ]);
    expect(members(archive(server(), PARTS))).toEqual([MANIFEST_MEMBER]);
  });

  it("carries the self-signed certificate and key with tlsMode self-signed, and no ACME state", () => {
    const s = server();
    fakeRelay(s, { tlsMode: "self-signed" });
    put(s, "/var/lib/acme/accounts/old/privkey", "an earlier mode's account\n");
    const names = members(archive(s, ["keys"], selfSigned.config));
    expect(names).toEqual([
      MANIFEST_MEMBER,
      "keys/root/etc/dkimkeys/",
      "keys/root/etc/dkimkeys/opendkim.private",
      `keys/root${PATHS.selfSignedCert}`,
      `keys/root${PATHS.selfSignedKey}`,
    ]);
  });
});

describe("the restore script", () => {
  it("puts an archive of every part into an empty root: the same files, modes, mtimes, owners and links", () => {
    const src = server();
    fakeRelay(src);
    const dst = server();
    const r = restore(dst, committed(archive(src, PARTS)), PARTS);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toMatch(
      /^restore: placed keys: 9 files, accounts: 8 files, mailboxes: 12 files \(0 replaced existing files\)\n$/,
    );
    expect(listing(dst)).toEqual(without(listing(src), NOT_STATE));
    expect(stagingLeft(dst)).toEqual([]);
  });

  it("creates the users first, the plan's way, then owns the key and the account folders as the plan does", () => {
    const src = server();
    fakeRelay(src);
    const dst = server();
    expect(restore(dst, committed(archive(src, PARTS)), PARTS).status).toBe(0);
    const log = calls(dst);
    expect(log.slice(0, 8)).toEqual([
      "getent group opendkim",
      "groupadd --system opendkim",
      "id -u opendkim",
      "useradd --system --gid opendkim --home-dir /run/opendkim --no-create-home --shell /usr/sbin/nologin opendkim",
      "getent group vmail",
      "groupadd --system vmail",
      "id -u vmail",
      "useradd --system --gid vmail --home-dir /home/vmail --no-create-home --shell /usr/sbin/nologin vmail",
    ]);
    const chowns = log.filter((l) => l.startsWith("chown"));
    expect(chowns).toEqual([
      `chown vmail:vmail ${dst.root}${MAILBOXES}`,
      `chown vmail:vmail ${dst.root}${MAILBOXES}`,
      `chown opendkim:opendkim ${dst.root}/etc/dkimkeys ${dst.root}${PATHS.dkimPrivateKey}`,
      ...[ALICE, BOB, "pending_notifications"]
        .sort()
        .map((a) => `chown -R vmail:vmail ${dst.root}${MAILBOXES}/${a}`),
    ]);
    // Users that exist are left alone.
    const again = server();
    put(again, "/x");
    setSwitch(again, "users-exist");
    expect(restore(again, committed(archive(src, ["accounts"])), ["accounts"]).status).toBe(0);
    expect(calls(again).filter((l) => /^(groupadd|useradd)/.test(l))).toEqual([]);
  });

  it("changes nothing when the users cannot be created", () => {
    const src = server();
    fakeRelay(src);
    const dst = server();
    setSwitch(dst, "fail-groupadd");
    const r = restore(dst, committed(archive(src, PARTS)), PARTS);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/could not create the users opendkim and vmail; nothing else was changed/);
    expect(listing(dst)).toEqual([]);
  });

  it("places only the parts asked for", () => {
    const src = server();
    fakeRelay(src);
    const dst = server();
    const r = restore(dst, committed(archive(src, PARTS)), ["accounts"]);
    expect(r.status).toBe(0);
    expect(existsSync(join(dst.root, PATHS.dkimPrivateKey))).toBe(false);
    expect(existsSync(join(dst.root, MAILBOXES, ALICE, "password"))).toBe(true);
    expect(existsSync(join(dst.root, MAILBOXES, ALICE, "cur"))).toBe(false);
    expect(existsSync(join(dst.root, "/etc/chatmail-nocreate"))).toBe(true);
  });

  it("refuses keys on a deployed server unless forced, saying why and what to do, and changes nothing", () => {
    const src = server();
    fakeRelay(src);
    const stream = committed(archive(src, PARTS));
    const dst = server();
    deployed(dst);
    put(dst, PATHS.dkimPrivateKey, "the deployed key\n", 0o600);
    running(dst, "postfix.service", "chatmaild.service");
    const before = listing(dst);
    const r = restore(dst, stream, PARTS);
    expect(r.status).toBe(REFUSED_EXIT);
    expect(r.stderr).toBe(`${KEYS_REFUSAL}\n`);
    expect(r.stderr).toMatch(/DKIM and CAA records wrong/);
    expect(r.stderr).toMatch(/dkimPrivateKey/);
    expect(listing(dst)).toEqual(before);
    expect(calls(dst)).toEqual([]);
    // Accounts and mailboxes are fine on a deployed server; keys with --force too.
    expect(restore(dst, stream, ["accounts", "mailboxes"]).status).toBe(0);
    expect(readFileSync(join(dst.root, PATHS.dkimPrivateKey), "utf8")).toBe("the deployed key\n");
    expect(restore(dst, stream, ["keys"], { force: true }).status).toBe(0);
    expect(readFileSync(join(dst.root, PATHS.dkimPrivateKey), "utf8")).toMatch(/MIIdkim/);
    expect(calls(dst)).toContain("systemctl try-restart opendkim.service nginx.service");
  });

  it("merges into a deployed relay: files of the same name replaced, other files kept, folders keep their mode", () => {
    const src = server();
    fakeRelay(src);
    const dst = server();
    deployed(dst);
    put(dst, `${MAILBOXES}/${ALICE}/password`, "{PBKDF2}made on the new server", 0o644);
    put(dst, `${MAILBOXES}/${ALICE}/new/1700000000.M9P9.new,S=3,W=3`, "arrived on the new server\n", 0o600);
    put(dst, `${MAILBOXES}/carol@${DOMAIN}/password`, "{PBKDF2}carol", 0o644);
    chmodSync(join(dst.root, MAILBOXES, ALICE), 0o750);
    const r = restore(dst, committed(archive(src, PARTS)), ["accounts", "mailboxes"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toMatch(/\(1 replaced existing files\)/);
    expect(readFileSync(join(dst.root, MAILBOXES, ALICE, "password"), "utf8")).toBe(
      `{PBKDF2}hash-of-${ALICE}`,
    );
    expect(existsSync(join(dst.root, MAILBOXES, ALICE, "new/1700000000.M9P9.new,S=3,W=3"))).toBe(true);
    expect(existsSync(join(dst.root, MAILBOXES, `carol@${DOMAIN}`, "password"))).toBe(true);
    expect(listing(dst, `${MAILBOXES}/${BOB}`)).toEqual(listing(src, `${MAILBOXES}/${BOB}`));
    const mode = (p: string) => (statSync(join(dst.root, p)).mode & 0o777).toString(8);
    expect(mode(`${MAILBOXES}/${ALICE}`)).toBe("750");
    expect(stagingLeft(dst)).toEqual([]);
  });

  it("stops the mail services that run while it places entries, and starts exactly those again", () => {
    const src = server();
    fakeRelay(src);
    const dst = server();
    running(dst, "postfix.service", "chatmaild.service", "nginx.service");
    expect(restore(dst, committed(archive(src, ["accounts"])), ["accounts"]).status).toBe(0);
    expect(calls(dst).filter((l) => l.startsWith("systemctl") && !l.includes("is-active"))).toEqual([
      "systemctl stop postfix.service",
      "systemctl stop chatmaild.service",
      "systemctl start chatmaild.service",
      "systemctl start postfix.service",
    ]);
    expect(active(dst)).toEqual(["chatmaild.service", "nginx.service", "postfix.service"]);
  });

  it("changes nothing for a stream that is cut short, damaged, not committed or of another relay", () => {
    const src = server();
    fakeRelay(src);
    const stream = archive(src, PARTS);
    const full = committed(stream);
    // Cuts at block boundaries (where tar itself sees a clean end), inside a member, and a flipped byte in the
    // header of the first member after the manifest's archive (a 10 KiB tar record).
    const flipped = Buffer.from(full);
    flipped[10240 + 10] ^= 0x55;
    const insideKey = full.indexOf("MIIdkim") + 3;
    expect(insideKey).toBeGreaterThan(3);
    const otherRelay = server();
    fakeRelay(otherRelay);
    const foreign = committed(archive(otherRelay, PARTS, configFor({ mail_domain: "other.example.net" })));
    const cases: Array<[string, Buffer, RegExp]> = [
      ["no commit member", stream, /ended before its end mark/],
      ["cut at a block boundary", committed(stream).subarray(0, 512 * 6), /ended before its end mark/],
      [
        "cut at the commit member's start",
        stream.subarray(0, stream.length - 1024),
        /ended before its end mark/,
      ],
      ["cut inside a member", full.subarray(0, insideKey), /damaged or cut short/],
      ["a flipped byte in a header", flipped, /damaged or cut short/],
      ["empty", Buffer.alloc(0), /damaged or cut short/],
      ["not tar", Buffer.from("hello\n".repeat(200)), /damaged or cut short/],
      [
        "another relay's archive",
        foreign,
        /the archive is of other\.example\.net, this relay is chat\.example\.org/,
      ],
    ];
    for (const [what, input, message] of cases) {
      const dst = server();
      put(dst, `${MAILBOXES}/${ALICE}/password`, "{PBKDF2}current", 0o644);
      running(dst, "dovecot.service");
      const before = listing(dst);
      const r = restore(dst, input, PARTS);
      expect(r.status, what).toBe(1);
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr, what).toMatch(/nothing was changed/);
      expect(listing(dst), what).toEqual(before);
      expect(stagingLeft(dst), what).toEqual([]);
      expect(
        calls(dst).filter((l) => /systemctl (stop|start)/.test(l)),
        what,
      ).toEqual([]);
    }
  });

  it("restores the self-signed certificate of a relay in that mode", () => {
    const src = server();
    fakeRelay(src, { tlsMode: "self-signed" });
    const dst = server();
    const r = restore(dst, committed(archive(src, ["keys"], selfSigned.config)), ["keys"], { c: selfSigned });
    expect(r.status).toBe(0);
    expect(listing(dst, "/etc/ssl")).toEqual(listing(src, "/etc/ssl"));
  });
});

describe("the users the restore creates", () => {
  it("are the plan's own user steps, without their run-log lines", () => {
    for (const name of ["vmail", "opendkim"]) {
      const step = plan.steps.find((s) => s.id === `user:${name}`)!;
      const body = stepBody(plan, `user:${name}`);
      expect(step.script).toContain(body);
      expect(body).not.toMatch(/runs\.log|chatmail-deploy/);
      expect(body).toMatch(new RegExp(`useradd --system --gid ${name} `));
    }
    const script = restoreScript({ config, plan, parts: PARTS, force: false });
    expect(script).toContain(stepBody(plan, "user:vmail"));
    expect(script).toContain(stepBody(plan, "user:opendkim"));
  });

  it("fail loudly when the plan's steps no longer start with the run-log lines", () => {
    const steps = compileSteps([user("vmail")]).map((s) => ({
      ...s,
      script: s.script.replace("set -eu\n", ""),
    }));
    expect(() => stepBody({ steps }, "user:vmail")).toThrow(/does not start with the run-log lines/);
    expect(() => stepBody(plan, "user:nobody")).toThrow(/has no step user:nobody/);
  });
});

describe("the commit member", () => {
  it("is a tar archive GNU tar reads, named as the restore script expects", () => {
    const r = spawnSync("tar", ["-tv", "-f", "-"], { input: commitTar(T0), encoding: "buffer" });
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toMatch(
      new RegExp(`root/root +9 .* ${COMMIT_MEMBER.replace(".", "\\.")}\\n$`),
    );
  });
});
