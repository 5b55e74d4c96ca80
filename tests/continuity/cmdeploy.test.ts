// The parts of the continuity testbed's cmdeploy preparation (tests/e2e/continuity/cmdeploy.ts) that run without
// a container: its chatmail.ini imports cleanly; its script, run with sh below a temporary root and live=0, writes
// the tree the testbed's server gets; the {SHA512-CRYPT} hashes it writes check out with Dovecot's own scheme code
// and reach Dovecot through our doveauth unchanged; a real Dovecot with our daemons on that tree logs the
// accounts in and finds their mail and device tokens; the Postfix, Dovecot and OpenDKIM files pass their
// programs' checks; and our prune step, run on that tree, leaves none of cmdeploy's leftovers and all the state.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDaemonBundle } from "../../components/assets";
import { parseChatmailIni } from "../../core/config";
import { planRelay } from "../../core/plan";
import { PATHS, READ_BACK } from "../../core/plan/facts";
import { REPLACED_UNITS } from "../../core/plan/parts/daemons";
import { CMDEPLOY_LEFTOVERS } from "../../core/plan/prune";
import { RUN_LOG } from "../../core/plan/steps";
import { CHATMAIL_INI } from "../../core/server";
import { Doveauth } from "../../daemons/doveauth";
import { parseDovecotFilename } from "../../daemons/expire";
import { TokenStore } from "../../daemons/metadata/tokens";
import { parseDaemonConfig } from "../../daemons/config";
import { memoryLogger } from "../../daemons/dictproxy/log";
import {
  CMDEPLOY_INI,
  CMDEPLOY_UNITS,
  cmdeployScript,
  leftoversCheckScript,
  maildirName,
  passwordHashes,
  sha512CryptPassword,
  storedForm,
  VENV,
  type CmdeployAccount,
} from "../e2e/continuity/cmdeploy";
import { NOBODY_UID, preparePaths, startDovecot, stopDovecot, writeDovecotConfig } from "../daemons/dovecot";
import { freePort } from "../daemons/helpers";
import { ImapClient } from "../daemons/mailclients";
import { testAssets } from "../plan/helpers";

const DOMAIN = "chat.example.org";
const MBOX = `/home/vmail/mail/${DOMAIN}`;
const HOST = "relay";

const message = (to: string, id: string) =>
  [
    "From: <old-peer@example.net>",
    `To: <${to}>`,
    "Subject: [...]",
    "Date: Mon, 02 Nov 2026 10:00:00 +0000",
    `Message-ID: <${id}@example.net>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "",
    `kept across the change ${id}`,
    "",
  ].join("\r\n");

const ACCOUNTS: CmdeployAccount[] = [
  {
    addr: `old0abcdef@${DOMAIN}`,
    password: "Zq8-pass'word\"with$specials",
    messages: [message(`old0abcdef@${DOMAIN}`, "m1"), message(`old0abcdef@${DOMAIN}`, "m2")],
    deviceToken: "token-0123456789abcdef",
  },
  {
    addr: `old1ghijkl@${DOMAIN}`,
    password: "second-password-12",
    messages: [message(`old1ghijkl@${DOMAIN}`, "m3")],
  },
];

const work = mkdtempSync(join(tmpdir(), "continuity-cmdeploy-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let roots = 0;

/** Runs the preparation's script with sh below a fresh root, as the testbed's server would, without systemd. */
function prepared(): { root: string; hashes: Map<string, string>; now: number } {
  const root = join(work, `root-${++roots}`);
  mkdirSync(root);
  const hashes = passwordHashes(ACCOUNTS);
  const now = Math.floor(Date.now() / 1000);
  const script = cmdeployScript(DOMAIN, ACCOUNTS, { now, host: HOST, hashes });
  expect(script.match(/^root=$/gm)).toHaveLength(1);
  expect(script.match(/^live=1$/gm)).toHaveLength(1);
  const local = script.replace(/^root=$/m, `root=${root}`).replace(/^live=1$/m, "live=0");
  const r = spawnSync("sh", ["-c", local], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return { root, hashes, now };
}

const at = (root: string, path: string) => join(root, path);

describe("CMDEPLOY_INI", () => {
  it("imports with our ini reader: no errors, no unknown keys, cmdeploy's values", () => {
    const { config, unknownKeys } = parseChatmailIni(CMDEPLOY_INI(DOMAIN));
    expect(unknownKeys).toEqual([]);
    expect(config.mailDomain).toBe(DOMAIN);
    expect(config.mailboxesDir).toBe(MBOX);
    expect(config.maxMailboxSize).toBe("100M");
    expect(config.passthroughRecipients).toEqual(["xstore@testrun.org", `echo@${DOMAIN}`]);
  });

  it("is accepted by npm run import-ini (tools/import-ini.ts): exit 0, nothing on stderr", () => {
    const file = join(work, "chatmail.ini");
    writeFileSync(file, CMDEPLOY_INI(DOMAIN));
    const r = spawnSync(join(__dirname, "../../node_modules/.bin/tsx"), ["tools/import-ini.ts", file], {
      cwd: join(__dirname, "../.."),
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`pulumi config set mailDomain '${DOMAIN}'`);
  });
});

describe("the password hashes", () => {
  // Our doveauth does not check passwords: it hands Dovecot the stored hash and Dovecot checks the password
  // with its scheme code (daemons/doveauth/index.ts). `doveadm pw -t` runs that same code.
  const dovecotAccepts = (hash: string, password: string) =>
    spawnSync("doveadm", ["pw", "-t", hash, "-p", password], { encoding: "utf8" }).status === 0;

  it("are {SHA512-CRYPT} crypt(3) hashes with a 16-character salt", () => {
    const hash = sha512CryptPassword("some password", "abcdefghijklmnop");
    expect(hash).toMatch(/^\{SHA512-CRYPT\}\$6\$abcdefghijklmnop\$[./0-9A-Za-z]{86}$/);
    // glibc's crypt(3) gives the same for the same salt (Python's crypt module wraps it, where it still exists).
    const py = spawnSync(
      "python3",
      [
        "-W",
        "ignore",
        "-c",
        "import crypt,sys; print(crypt.crypt(sys.argv[1], '$6$abcdefghijklmnop'))",
        "some password",
      ],
      { encoding: "utf8" },
    );
    if (py.status === 0) expect(hash).toBe(`{SHA512-CRYPT}${py.stdout.trim()}`);
  });

  it("check out with Dovecot for the right password and not for a wrong one", () => {
    for (const [addr, hash] of passwordHashes(ACCOUNTS)) {
      const password = ACCOUNTS.find((a) => a.addr === addr)!.password;
      expect(dovecotAccepts(hash, password), addr).toBe(true);
      expect(dovecotAccepts(hash, `${password}x`), addr).toBe(false);
      expect(dovecotAccepts(hash, "wrong-password"), addr).toBe(false);
    }
  });

  it("are what the files hold, and our doveauth hands them to Dovecot unchanged", async () => {
    const { root, hashes } = prepared();
    // The ini the preparation left, pointed at the temporary root.
    const ini = readFileSync(join(root, CHATMAIL_INI), "utf8") + `mailboxes_dir = ${join(root, MBOX)}\n`;
    const { config, unknownKeys } = parseDaemonConfig(ini);
    expect(unknownKeys).toEqual([]);
    const log = memoryLogger("doveauth");
    const doveauth = new Doveauth(config, { nocreateFile: join(root, "nocreate"), log });
    for (const acc of ACCOUNTS) {
      const file = readFileSync(at(root, `${MBOX}/${acc.addr}/password`), "latin1");
      expect(file).toBe(hashes.get(acc.addr));
      expect(file.endsWith("\n")).toBe(false);
      const record = await doveauth.lookupPassdb(
        acc.addr,
        "any password: existing accounts are not re-hashed",
      );
      expect(record?.password).toBe(file);
      expect(record?.home).toBe(join(root, MBOX, acc.addr));
      expect(dovecotAccepts(record!.password, acc.password)).toBe(true);
    }
    expect(log.lines).toEqual([]);
  });
});

describe("the prepared tree", () => {
  let root: string;
  let now: number;
  beforeAll(() => ({ root, now } = prepared()));

  it("names every maildir file the way Dovecot does, with the right sizes and times", () => {
    for (const acc of ACCOUNTS) {
      const cur = at(root, `${MBOX}/${acc.addr}/cur`);
      const names = readdirSync(cur).sort();
      expect(names).toHaveLength(acc.messages.length);
      for (const d of ["new", "tmp"]) expect(readdirSync(at(root, `${MBOX}/${acc.addr}/${d}`))).toEqual([]);
      names.forEach((name, i) => {
        // <unix time>.M<n>P<pid>.<host>,S=<size>,W=<size with CRLF>:2,<flags>; no '/' and one ':'.
        expect(name).toMatch(/^\d{10}\.M\d+P\d+\.[A-Za-z0-9-]+,S=\d+,W=\d+:2,S$/);
        const content = readFileSync(join(cur, name));
        expect(content.toString()).toBe(storedForm(acc.messages[i]));
        const parsed = parseDovecotFilename(`cur/${name}`);
        expect(parsed?.quotaSize).toBe(content.length);
        expect(parsed?.mtime).toBe(Math.trunc(statSync(join(cur, name)).mtimeMs / 1000));
        expect(parsed!.mtime).toBeLessThan(now);
        const w = Number(/,W=(\d+)/.exec(name)![1]);
        expect(w).toBe(Buffer.byteLength(acc.messages[i]));
        expect(name).toBe(
          maildirName(content.toString(), parsed!.mtime, Number(/\.M(\d+)P/.exec(name)![1]), HOST),
        );
      });
      const mode = (p: string) => statSync(at(root, `${MBOX}/${acc.addr}/${p}`)).mode & 0o777;
      expect(mode("")).toBe(0o700);
      expect(mode("password")).toBe(0o600);
      // The password's mtime is the last login, by day.
      const day = Math.floor(now / 86400) * 86400;
      expect(statSync(at(root, `${MBOX}/${acc.addr}/password`)).mtimeMs / 1000).toBe(day);
      expect(existsSync(at(root, `${MBOX}/${acc.addr}/enforceE2EEincoming`))).toBe(true);
    }
  });

  it("keeps the device token in metadata.json as chatmaild 1.7.0 writes it, and our metadata daemon reads it", async () => {
    const [acc] = ACCOUNTS;
    const text = readFileSync(at(root, `${MBOX}/${acc.addr}/metadata.json`), "utf8");
    expect(text).toMatch(/^\{"devicetoken": \{"token-0123456789abcdef": \d+\}\}$/);
    const log = memoryLogger("metadata");
    const store = new TokenStore(join(root, MBOX), log);
    expect(await store.get(acc.addr)).toEqual([acc.deviceToken]);
    expect(log.lines).toEqual([]);
    expect(existsSync(at(root, `${MBOX}/${ACCOUNTS[1].addr}/metadata.json`))).toBe(false);
  });

  it("has the DKIM key, readable by the stack's read-back command", () => {
    const key = at(root, PATHS.dkimPrivateKey);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const out = execFileSync("sh", ["-c", READ_BACK.dkimPublicKey.split(PATHS.dkimPrivateKey).join(key)], {
      encoding: "utf8",
    });
    expect(out).toMatch(/^MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA[A-Za-z0-9+/]+=*$/);
    expect(readFileSync(at(root, "/etc/dkimkeys/KeyTable"), "utf8")).toBe(
      `opendkim._domainkey.${DOMAIN} ${DOMAIN}:opendkim:${PATHS.dkimPrivateKey}\n`,
    );
  });

  it("has cmdeploy's units, each running a program of the virtualenv that only sleeps", () => {
    for (const unit of REPLACED_UNITS) {
      const text = readFileSync(at(root, `/etc/systemd/system/${unit}`), "utf8");
      const exec = /^ExecStart=(\S+)/m.exec(text)?.[1];
      expect(exec?.startsWith(`${VENV}/bin/`), unit).toBe(true);
      const program = at(root, exec!);
      expect(statSync(program).mode & 0o777).toBe(0o755);
      expect(readFileSync(program, "utf8")).toContain("exec /bin/sleep infinity");
      expect(text).toMatch(/^WantedBy=multi-user\.target$/m);
    }
    expect(readFileSync(at(root, CHATMAIL_INI), "utf8")).toBe(CMDEPLOY_INI(DOMAIN));
    expect(lstatSync(at(root, `${VENV}/bin/python3`)).isSymbolicLink()).toBe(true);
    const tar = execFileSync("tar", ["-tzf", at(root, "/usr/local/lib/chatmaild/dist/chatmaild-0.2.tar.gz")]);
    expect(tar.toString()).toContain("chatmaild-0.2/PKG-INFO");
  });

  it("has every one of CMDEPLOY_LEFTOVERS, and the leftovers check lists them all", () => {
    for (const l of CMDEPLOY_LEFTOVERS) expect(existsSync(at(root, l.entry.path)), l.entry.path).toBe(true);
    const r = spawnSync(
      "sh",
      [
        "-c",
        leftoversCheckScript()
          .replace(/^root=$/m, `root=${root}`)
          .replace(/^live=1$/m, "live=0"),
      ],
      {
        encoding: "utf8",
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n").sort()).toEqual(CMDEPLOY_LEFTOVERS.map((l) => l.entry.path).sort());
  });

  it("has Postfix files that postconf and postfix check accept without a warning", () => {
    const dir = join(work, "postfix");
    mkdirSync(dir, { recursive: true });
    for (const f of ["main.cf", "master.cf", "login_map", "submission_header_cleanup"]) {
      const text = readFileSync(at(root, `/etc/postfix/${f}`), "utf8")
        .split("/etc/postfix/")
        .join(`${dir}/`)
        .split(`/var/lib/acme/live/`)
        .join(at(root, "/var/lib/acme/live/"));
      writeFileSync(join(dir, f), text);
    }
    for (const args of [["-n"], ["-M"]]) {
      const r = spawnSync("postconf", ["-c", dir, ...args], { encoding: "utf8" });
      expect(r.stderr, `postconf ${args}`).toBe("");
      expect(r.status).toBe(0);
    }
    const check = spawnSync("postfix", ["-c", dir, "check"], { encoding: "utf8" });
    expect(check.stderr).toBe("");
    expect(check.status).toBe(0);
    // postfix check does not look at master.cf's programs; each must be one of Postfix's.
    const daemons = execFileSync("postconf", ["-c", dir, "-h", "daemon_directory"], {
      encoding: "utf8",
    }).trim();
    const services = execFileSync("postconf", ["-c", dir, "-M"], { encoding: "utf8" }).trim().split("\n");
    for (const s of services) expect(existsSync(join(daemons, s.split(/\s+/)[7])), s).toBe(true);
    expect(services.map((s) => s.split(/\s+/).slice(0, 2).join(" "))).toEqual(
      expect.arrayContaining([
        "smtp inet",
        "submission inet",
        "smtps inet",
        "127.0.0.1:10025 inet",
        "127.0.0.1:10026 inet",
      ]),
    );
    const main = readFileSync(at(root, "/etc/postfix/main.cf"), "utf8");
    expect(main).toMatch(new RegExp(`^virtual_mailbox_domains = ${DOMAIN}$`, "m"));
    expect(readFileSync(at(root, "/etc/postfix/master.cf"), "utf8")).toContain(
      "smtpd_proxy_filter=127.0.0.1:10081",
    );
  });

  it("has a dovecot.conf that doveconf -n accepts, with the dict passdb over doveauth's socket", () => {
    const conf = join(work, "dovecot-check.conf");
    writeFileSync(
      conf,
      readFileSync(at(root, "/etc/dovecot/dovecot.conf"), "utf8")
        .split("/var/lib/acme/live/")
        .join(at(root, "/var/lib/acme/live/"))
        .split("/etc/dovecot/")
        .join(at(root, "/etc/dovecot/")),
    );
    const r = spawnSync("doveconf", ["-c", conf, "-n"], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`mail_location = maildir:${MBOX}/%u`);
    expect(readFileSync(at(root, "/etc/dovecot/auth.conf"), "utf8")).toContain(
      "uri = proxy:/run/doveauth/doveauth.socket:auth",
    );
  });

  it("has an opendkim.conf that opendkim -n accepts", () => {
    const conf = join(work, "opendkim-check.conf");
    const local = (text: string) =>
      text
        .split("/etc/dkimkeys/")
        .join(at(root, "/etc/dkimkeys/"))
        .split("/var/spool/")
        .join(at(root, "/var/spool/"));
    writeFileSync(conf, local(readFileSync(at(root, "/etc/opendkim.conf"), "utf8")));
    writeFileSync(
      at(root, "/etc/dkimkeys/KeyTable"),
      local(readFileSync(at(root, "/etc/dkimkeys/KeyTable"), "utf8")),
    );
    const r = spawnSync("opendkim", ["-n", "-x", conf], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("the script's live part", () => {
  it("makes the users, owns the files, starts the units and checks them, with stand-ins for the system's commands", () => {
    const root = join(work, `root-${++roots}`);
    const bin = join(work, `bin-${roots}`);
    mkdirSync(root);
    mkdirSync(bin);
    // Each stand-in records its call; getent finds no user, so the users are made.
    for (const cmd of [
      "getent",
      "groupadd",
      "useradd",
      "usermod",
      "chown",
      "newaliases",
      "postfix",
      "doveconf",
    ].concat(["opendkim", "systemctl"])) {
      const status = cmd === "getent" ? 2 : 0;
      writeFileSync(join(bin, cmd), `#!/bin/sh\necho "${cmd} $*" >>${bin}/calls.log\nexit ${status}\n`);
      chmodSync(join(bin, cmd), 0o755);
    }
    const script = cmdeployScript(DOMAIN, ACCOUNTS, {
      now: Math.floor(Date.now() / 1000),
      host: HOST,
      hashes: passwordHashes(ACCOUNTS),
    }).replace(/^root=$/m, `root=${root}`);
    const r = spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const calls = readFileSync(join(bin, "calls.log"), "utf8").trimEnd().split("\n");
    expect(calls).toEqual(
      expect.arrayContaining([
        "groupadd -r vmail",
        "useradd -r -M -g vmail -d /home/vmail -s /bin/sh vmail",
        "useradd -r -M -g echobot -d /home/echobot -s /bin/sh echobot",
        "usermod -a -G opendkim postfix",
        `chown vmail:vmail ${root}${MBOX}/${ACCOUNTS[0].addr}/password`,
        `chown opendkim:opendkim ${root}${PATHS.dkimPrivateKey} ${root}${PATHS.dkimKeyDir}/opendkim.txt`,
        "postfix check",
        "doveconf -n",
        "opendkim -n",
        `systemctl enable --now ${CMDEPLOY_UNITS.join(" ")}`,
        "systemctl restart opendkim dovecot postfix",
        "systemctl is-active --quiet postfix@-",
      ]),
    );
    for (const unit of CMDEPLOY_UNITS) expect(calls).toContain(`systemctl is-active --quiet ${unit}`);
    // The checks run after every file is written, and the services start after the checks.
    expect(calls.indexOf("postfix check")).toBeGreaterThan(
      calls.lastIndexOf(`chown vmail:vmail ${root}${MBOX}/${ACCOUNTS[1].addr}/password`),
    );
    expect(calls.indexOf("systemctl daemon-reload")).toBeGreaterThan(calls.indexOf("opendkim -n"));
  });

  it("stops with the names of the units that are not active", () => {
    const root = join(work, `root-${++roots}`);
    const bin = join(work, `bin-${roots}`);
    mkdirSync(root);
    mkdirSync(bin);
    for (const cmd of [
      "getent",
      "groupadd",
      "useradd",
      "usermod",
      "chown",
      "newaliases",
      "postfix",
      "doveconf",
      "opendkim",
    ]) {
      writeFileSync(join(bin, cmd), "#!/bin/sh\nexit 0\n");
      chmodSync(join(bin, cmd), 0o755);
    }
    // echobot fails to start: is-active says no, status explains.
    writeFileSync(
      join(bin, "systemctl"),
      '#!/bin/sh\ncase "$*" in *"is-active --quiet echobot.service"*) exit 3 ;; status*) echo "status of $4" ;; esac\nexit 0\n',
    );
    chmodSync(join(bin, "systemctl"), 0o755);
    const script = cmdeployScript(DOMAIN, ACCOUNTS, {
      now: Math.floor(Date.now() / 1000),
      host: HOST,
      hashes: passwordHashes(ACCOUNTS),
    }).replace(/^root=$/m, `root=${root}`);
    const r = spawnSync("sh", ["-c", script], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("status of echobot.service");
    expect(r.stderr).toContain("not active: echobot.service");
  });
});

describe("the leftovers check on a live server", () => {
  it("names the replaced units systemd still has loaded or running, and enablement links left behind", () => {
    const root = join(work, `root-${++roots}`);
    const bin = join(work, `bin-${roots}`);
    mkdirSync(join(root, "etc/systemd/system/multi-user.target.wants"), { recursive: true });
    mkdirSync(bin);
    execFileSync("ln", [
      "-s",
      "/etc/systemd/system/echobot.service",
      join(root, "etc/systemd/system/multi-user.target.wants/echobot.service"),
    ]);
    // doveauth.service: still loaded and running; lastlogin.service: file gone but still running; others gone.
    writeFileSync(
      join(bin, "systemctl"),
      [
        "#!/bin/sh",
        'case "$3 $5" in',
        '  "LoadState doveauth.service") echo loaded ;;',
        '  "ActiveState doveauth.service" | "ActiveState lastlogin.service") echo active ;;',
        "  LoadState*) echo not-found ;;",
        "  *) echo inactive ;;",
        "esac",
        "",
      ].join("\n"),
    );
    chmodSync(join(bin, "systemctl"), 0o755);
    const r = spawnSync("sh", ["-c", leftoversCheckScript().replace(/^root=$/m, `root=${root}`)], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual([
      "doveauth.service (loaded, active)",
      "lastlogin.service (not-found, active)",
      "/etc/systemd/system/multi-user.target.wants/echobot.service",
    ]);
  });
});

describe("our prune step on the prepared tree", () => {
  it("removes every leftover, stops every cmdeploy unit, and keeps accounts, mail, tokens and the DKIM key", () => {
    const { root } = prepared();
    const bin = join(work, `bin-${roots}`);
    mkdirSync(bin);
    writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >>${bin}/systemctl.log\n`);
    chmodSync(join(bin, "systemctl"), 0o755);
    const config = { ...parseChatmailIni(CMDEPLOY_INI(DOMAIN)).config, tlsMode: "self-signed" as const };
    const plan = planRelay(config, testAssets());
    const step = plan.steps.find((s) => s.kind === "prune")!;
    expect(step.script.match(/^root=$/gm)).toHaveLength(1);
    const script = step.script
      .replace(/^root=$/m, `root=${root}`)
      .split(RUN_LOG)
      .join(join(bin, "runs.log"))
      .replace(`mkdir -p ${RUN_LOG.slice(0, RUN_LOG.lastIndexOf("/"))}\n`, `mkdir -p ${bin}\n`);
    const r = spawnSync("sh", ["-c", script], {
      input: step.stdin,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const check = spawnSync(
      "sh",
      [
        "-c",
        leftoversCheckScript()
          .replace(/^root=$/m, `root=${root}`)
          .replace(/^live=1$/m, "live=0"),
      ],
      { encoding: "utf8" },
    );
    expect(check.stdout).toBe("");
    const calls = readFileSync(join(bin, "systemctl.log"), "utf8");
    for (const unit of CMDEPLOY_UNITS) expect(calls).toContain(`disable --now ${unit}`);
    for (const acc of ACCOUNTS) {
      expect(existsSync(at(root, `${MBOX}/${acc.addr}/password`))).toBe(true);
      expect(readdirSync(at(root, `${MBOX}/${acc.addr}/cur`))).toHaveLength(acc.messages.length);
    }
    expect(existsSync(at(root, `${MBOX}/${ACCOUNTS[0].addr}/metadata.json`))).toBe(true);
    expect(existsSync(at(root, PATHS.dkimPrivateKey))).toBe(true);
    expect(existsSync(at(root, CHATMAIL_INI))).toBe(true);
  });
});

// A real Dovecot (Debian's, started without systemd) and our daemons on the prepared mailboxes, wired as in
// tests/daemons/dovecot.test.ts: what the testbed checks after the deploy, here before any deploy.
describe("Dovecot with our daemons on the prepared mailboxes", () => {
  let root: string;
  let daemons: ChildProcess | undefined;
  let daemonLog = "";
  let conf: string | undefined;
  let imapPort: number;

  beforeAll(async () => {
    ({ root } = prepared());
    const mailboxesDir = join(root, MBOX);
    // Dovecot's and the daemons' users (nobody) must reach the root.
    chmodSync(work, 0o755);
    const paths = preparePaths(root, mailboxesDir);
    execFileSync("chown", ["-R", `${NOBODY_UID}:${NOBODY_UID}`, mailboxesDir]);
    // The ini the accounts were made with, plus what only this test needs.
    const ini = join(root, "test-chatmail.ini");
    writeFileSync(
      ini,
      CMDEPLOY_INI(DOMAIN) +
        `mailboxes_dir = ${mailboxesDir}\nmax_load_1m = 99999\nmin_available_memory = 0\nmin_free_disk_space = 0\n`,
    );
    const bundle = writeDaemonBundle(join(root, "chatmaild.js"));
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
        join(root, "nocreate"),
        "--mail-user",
        String(NOBODY_UID),
      ],
      { uid: NOBODY_UID, gid: NOBODY_UID, stdio: ["ignore", "ignore", "pipe"] },
    );
    daemons.stderr?.on("data", (d) => (daemonLog += d));
    for (let i = 0; (daemonLog.match(/ started/g) ?? []).length < 3; i++) {
      if (i > 400) throw new Error(`daemons did not start:\n${daemonLog}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    imapPort = await freePort();
    const config = parseChatmailIni(readFileSync(ini, "utf8")).config;
    conf = writeDovecotConfig(paths, config, imapPort, await freePort());
    startDovecot(conf, join(root, "dovecot.log"));
    for (let i = 0; !existsSync(join(paths.runDir, "dovecot", "master.pid")); i++) {
      if (i > 400) throw new Error("dovecot did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(async () => {
    if (conf) stopDovecot(conf);
    daemons?.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
  });

  const quoted = (s: string) => `"${s.replace(/(["\\])/g, "\\$1")}"`;

  it("logs every account in with its old password, finds its messages in INBOX and its device token", async () => {
    for (const acc of ACCOUNTS) {
      const client = await ImapClient.connect(imapPort);
      try {
        const login = await client.command(`LOGIN ${quoted(acc.addr)} ${quoted(acc.password)}`);
        expect(login.ok, `${login.text}\n${daemonLog}`).toBe(true);
        const select = await client.command("SELECT INBOX");
        expect(select.text).toContain(`* ${acc.messages.length} EXISTS`);
        const fetch = await client.command("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])");
        for (const m of acc.messages) expect(fetch.text).toContain(/Message-ID: <[^>]+>/.exec(m)![0]);
        expect(fetch.text).toContain("\\Seen");
        const meta = await client.command("GETMETADATA INBOX /private/devicetoken");
        expect(meta.ok).toBe(true);
        if (acc.deviceToken) expect(meta.text).toContain(acc.deviceToken);
      } finally {
        client.close();
      }
    }
    // No account was created: they all existed.
    expect(daemonLog).not.toContain("Created address");
  });

  it("refuses a wrong password and leaves the hash alone", async () => {
    const acc = ACCOUNTS[1];
    const before = readFileSync(join(root, MBOX, acc.addr, "password"), "latin1");
    const client = await ImapClient.connect(imapPort);
    const login = await client.command(`LOGIN ${quoted(acc.addr)} ${quoted("wrong-password-1")}`);
    client.close();
    expect(login.ok).toBe(false);
    expect(readFileSync(join(root, MBOX, acc.addr, "password"), "latin1")).toBe(before);
  });
});
