// Dovecot started with the rendered dovecot.conf (no systemd), in a mount and network namespace of its own: a
// message delivered over LMTP lands in the maildir below mailboxesDir with quota accounting, and the Lua hook
// reaches for the metadata daemon's socket. Adaptations, because this is not a relay: the namespace sees a
// passwd with a vmail user and a temporary directory as /var/spool/postfix; /etc/dovecot/ paths point at the
// rendered tree; passdb/userdb are static instead of doveauth's dict (doveauth is tested with the daemons);
// base_dir and log_path are appended.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  appendFileSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { planFor, text, writeTree, testCertificate } from "./helpers";

const DEADLINE_MS = 20_000;
let dir: string;
let dovecot: ChildProcess | undefined;
const log = () =>
  existsSync(join(dir, "dovecot.log")) ? readFileSync(join(dir, "dovecot.log"), "utf8") : "";

async function waitFor(what: string, ok: () => boolean): Promise<void> {
  const start = Date.now();
  while (!ok()) {
    if (Date.now() - start > DEADLINE_MS)
      throw new Error(`${what}: not within ${DEADLINE_MS} ms; log:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One LMTP session; returns every reply line. */
function lmtp(socket: string, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    const replies: string[] = [];
    let buffer = "";
    let next = 0;
    conn.setEncoding("utf8");
    conn.on("error", reject);
    conn.on("data", (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        replies.push(line);
        if (line[3] === "-") continue;
        if (next < commands.length) conn.write(commands[next++]);
        else conn.end();
      }
    });
    conn.on("close", () => resolve(replies));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dovecot-run-"));
  const mail = join(dir, "mail");
  const { cert, key } = testCertificate(dir);
  const plan = planFor({ mailboxes_dir: mail, tls_external_cert_and_key: `${cert} ${key}` });
  const root = join(dir, "root");
  writeTree(plan, root, (p) => p.startsWith("/etc/dovecot/"));

  // A vmail user for the namespace only; the test machine's passwd stays as it is.
  const uid = 64900;
  copyFileSync("/etc/passwd", join(dir, "passwd"));
  copyFileSync("/etc/group", join(dir, "group"));
  appendFileSync(join(dir, "passwd"), `vmail:x:${uid}:${uid}::/nonexistent:/usr/sbin/nologin\n`);
  appendFileSync(join(dir, "group"), `vmail:x:${uid}:\n`);
  mkdirSync(join(dir, "spool/private"), { recursive: true });
  mkdirSync(mail);
  chownSync(mail, uid, uid);
  spawnSync("chmod", ["755", dir]);

  const conf = text(plan, "/etc/dovecot/dovecot.conf")
    .split("/etc/dovecot/")
    .join(join(root, "etc/dovecot/"))
    .replace(
      /passdb \{\n  driver = dict\n  args = [^\n]+\n\}/,
      "passdb {\n  driver = static\n  args = password=unused\n}",
    )
    .replace(
      /userdb \{\n  driver = dict\n  args = [^\n]+\n\}/,
      `userdb {\n  driver = static\n  args = uid=vmail gid=vmail home=${mail}/%u\n}`,
    );
  expect(conf).toContain("driver = static\n  args = uid=vmail");
  writeFileSync(join(dir, "dovecot.conf"), `${conf}\nbase_dir = ${dir}/run\nlog_path = ${dir}/dovecot.log\n`);
  writeFileSync(
    join(dir, "start.sh"),
    [
      "set -e",
      "ip link set lo up",
      `mount --bind ${dir}/passwd /etc/passwd`,
      `mount --bind ${dir}/group /etc/group`,
      `mount --bind ${dir}/spool /var/spool/postfix`,
      `exec dovecot -F -c ${dir}/dovecot.conf`,
    ].join("\n"),
  );
  dovecot = spawn("unshare", ["--mount", "--net", "--fork", "sh", join(dir, "start.sh")], {
    stdio: "ignore",
  });
  await waitFor("dovecot's LMTP socket", () => existsSync(join(dir, "spool/private/dovecot-lmtp")));
});

afterAll(async () => {
  const pidFile = join(dir, "run/master.pid");
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    process.kill(pid, "SIGTERM");
    await waitFor("dovecot to stop", () => !existsSync(`/proc/${pid}`));
  }
  dovecot?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("dovecot with the rendered configuration", () => {
  it("delivers over LMTP into the maildir below mailboxesDir, counts quota and runs the push hook", async () => {
    const replies = await lmtp(join(dir, "spool/private/dovecot-lmtp"), [
      "LHLO test\r\n",
      "MAIL FROM:<bob@example.net>\r\n",
      "RCPT TO:<alice@chat.example.org>\r\n",
      "DATA\r\n",
      "From: bob@example.net\r\nTo: alice@chat.example.org\r\nSubject: hi\r\n\r\nhello\r\n.\r\n",
      "QUIT\r\n",
    ]);
    expect(replies.find((r) => r.startsWith("250 2.0.0 <alice@chat.example.org>"))).toMatch(/Saved$/);
    const inbox = join(dir, "mail/alice@chat.example.org");
    expect(readdirSync(join(inbox, "new"))).toHaveLength(1);
    expect(existsSync(join(inbox, "maildirsize"))).toBe(true);
    // No metadata daemon runs here: the hook's metadata_set fails at exactly the socket chatmaild serves.
    await waitFor("the hook's log line", () => log().includes("metadata_set"));
    expect(log()).toContain(`net_connect_unix(${PATHS.metadataSocket}) failed`);
    expect(log()).toContain("saved mail to INBOX");
  });
});
