// Servers for the state tests: a temporary root folder per server that the scripts reach through their `root=`
// prefix, a fake relay's state in it, and fake system commands on PATH that record their calls (systemctl,
// the user tools, chown, Postfix's commands, sleep, and ssh, which runs the remote command locally against the
// root of the host it is asked for). Real sh, tar, find and mv do the work.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import { MANIFEST } from "../../core/plan/prune";
import { PATHS } from "../../core/plan/facts";
import { DOMAIN } from "../plan/helpers";

export { DOMAIN };
export const MAILBOXES = `/home/vmail/mail/${DOMAIN}`;
export const ALICE = `alice@${DOMAIN}`;
export const BOB = `bob@${DOMAIN}`;

const work = mkdtempSync(join(tmpdir(), "state-"));
let count = 0;

/** Removes every server of this test file. */
export const cleanupServers = () => rmSync(work, { recursive: true, force: true });

export interface Server {
  readonly name: string;
  /** What the scripts see as /. */
  readonly root: string;
  /** Logs of the fake commands and their switches. */
  readonly dir: string;
}

const FAKES: Record<string, string> = {
  // `is-active` answers from the switch files in $FAKE_HOST_DIR/active; stop and start change them.
  systemctl: `echo "systemctl $*" >>"$FAKE_HOST_DIR/calls"
case $1 in
  is-active) [ -e "$FAKE_HOST_DIR/active/$3" ]; exit $? ;;
  stop) for u in "$@"; do rm -f "$FAKE_HOST_DIR/active/$u"; done ;;
  start) shift; for u in "$@"; do touch "$FAKE_HOST_DIR/active/$u"; done ;;
esac
exit 0`,
  getent: `echo "getent $*" >>"$FAKE_HOST_DIR/calls"; [ -e "$FAKE_HOST_DIR/users-exist" ]`,
  id: `echo "id $*" >>"$FAKE_HOST_DIR/calls"; [ -e "$FAKE_HOST_DIR/users-exist" ] && echo 999`,
  groupadd: `echo "groupadd $*" >>"$FAKE_HOST_DIR/calls"; [ ! -e "$FAKE_HOST_DIR/fail-groupadd" ]`,
  useradd: `echo "useradd $*" >>"$FAKE_HOST_DIR/calls"`,
  usermod: `echo "usermod $*" >>"$FAKE_HOST_DIR/calls"`,
  chown: `echo "chown $*" >>"$FAKE_HOST_DIR/calls"`,
  postconf: `echo "postconf $*" >>"$FAKE_HOST_DIR/calls"; [ ! -e "$FAKE_HOST_DIR/fail-postconf" ]`,
  postfix: `echo "postfix $*" >>"$FAKE_HOST_DIR/calls"; [ "$1" != status ] || [ ! -e "$FAKE_HOST_DIR/postfix-stopped" ]`,
  // -j prints the recorded queues queue-1, queue-2, ... one per call, the last one again once they run out.
  postqueue: `echo "postqueue $*" >>"$FAKE_HOST_DIR/calls"
[ "$1" = -j ] || exit 0
n=$(($(cat "$FAKE_HOST_DIR/queue-calls" 2>/dev/null || echo 0) + 1))
echo "$n" >"$FAKE_HOST_DIR/queue-calls"
while [ "$n" -gt 1 ] && [ ! -e "$FAKE_HOST_DIR/queue-$n" ]; do n=$((n - 1)); done
cat "$FAKE_HOST_DIR/queue-$n" 2>/dev/null
exit 0`,
  sleep: `echo "sleep $*" >>"$FAKE_HOST_DIR/calls"`,
  // The remote command (the last argument) runs here with the root of the host named before it; the script's
  // root= line points it there, and the host's own switches and logs are in $FAKE_SSH/<host>.
  ssh: `n=$#
eval "cmd=\\\${$n}"
eval "dest=\\\${$((n - 1))}"
host=\${dest#*@}
echo "ssh $dest" >>"$FAKE_SSH/ssh.log"
[ -e "$FAKE_SSH/$host/root" ] || { echo "ssh: connect to host $host port 22: Connection refused" >&2; exit 255; }
FAKE_HOST_DIR=$FAKE_SSH/$host
export FAKE_HOST_DIR
root=$FAKE_SSH/$host/root
cmd=$(printf '%s\\n' "$cmd" | sed "s|^\\(sh -c '\\)\\{0,1\\}root=\\$|\\1root=$root|")
exec sh -c "$cmd"`,
};

/** The fake commands, once per test file. */
export const BIN = (() => {
  const bin = join(work, "bin");
  mkdirSync(bin);
  for (const [name, body] of Object.entries(FAKES)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
})();

/** The folder the fake ssh finds hosts in: a host named N is the server whose dir is $FAKE_SSH/N. */
export const FAKE_SSH = work;

export const PATH_WITH_FAKES = `${BIN}:${process.env.PATH}`;

/** A new, empty server, reachable by the fake ssh as host `name`. */
export function server(name = `server-${++count}`): Server {
  const dir = join(work, name);
  const root = join(dir, "root");
  mkdirSync(join(dir, "active"), { recursive: true });
  mkdirSync(root);
  writeFileSync(join(dir, "calls"), "");
  return { name, root, dir };
}

export const calls = (s: Server) =>
  readFileSync(join(s.dir, "calls"), "utf8")
    .split("\n")
    .filter((l) => l !== "");

/** Marks services as running on the server, as the fake systemctl sees them. */
export const running = (s: Server, ...units: string[]) => {
  for (const u of units) writeFileSync(join(s.dir, "active", u), "");
};
/** Sets a switch of the fake commands (fail-groupadd, users-exist, fail-postconf, queue-N files). */
export const setSwitch = (s: Server, name: string, content = "") => writeFileSync(join(s.dir, name), content);
export const active = (s: Server) => readdirSync(join(s.dir, "active")).sort();

/** The server was deployed (the deploy's manifest exists). */
export const deployed = (s: Server) => put(s, MANIFEST, "file /etc/postfix/main.cf\n");

/** Runs a script as its remote command would, with every server path below the server's root. */
export function runScript(s: Server, script: string, input?: Buffer | string) {
  const lines = script.split("\n");
  const rootLines = lines.filter((l) => l === "root=");
  if (rootLines.length > 1) throw new Error("more than one root= line");
  const local = script.replace(/^root=$/m, `root=${s.root}`);
  const r = spawnSync("sh", ["-c", local], {
    input: input ?? "",
    maxBuffer: 512 * 1024 * 1024,
    env: { ...process.env, PATH: PATH_WITH_FAKES, FAKE_HOST_DIR: s.dir },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

const DAY = 86400;
/** Fixed times, far from now, so that a copy that loses an mtime shows. */
export const T0 = 1_600_000_000;

export function put(
  s: Server,
  path: string,
  content: string | Buffer = "x\n",
  mode = 0o644,
  mtime = T0,
): string {
  const full = join(s.root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content);
  chmodSync(full, mode);
  utimesSync(full, mtime, mtime);
  return full;
}

const dir = (s: Server, path: string, mode: number) => {
  mkdirSync(join(s.root, path), { recursive: true });
  chmodSync(join(s.root, path), mode);
};

/** Paths of the fake relay that are no state: no archive may carry them. */
export const NOT_STATE = [
  "/etc/postfix",
  "/etc/dkimkeys/KeyTable",
  "/var/lib/acme/tmp",
  `${MAILBOXES}/not-an-account`,
  "/var/lib/chatmail-deploy",
];

/** Files of the fake relay's accounts part (of alice), and of its mailboxes part. */
export const ACCOUNT_FILES = [`${ALICE}/password`, `${ALICE}/enforceE2EEincoming`, `${ALICE}/metadata.json`];
export const MAIL_FILES = [`${ALICE}/cur/1600000000.M1P1.host,S=6,W=7:2,S`, `${ALICE}/dovecot-uidlist`];

/**
 * A relay's state as the code writes it (see core/state/entries.ts), with modes and mtimes that a careless copy
 * would lose, and some files around it that are no state.
 */
export function fakeRelay(s: Server, opts: { tlsMode?: "acme" | "self-signed" } = {}): void {
  dir(s, "/etc/dkimkeys", 0o700);
  const key = put(
    s,
    PATHS.dkimPrivateKey,
    "-----BEGIN PRIVATE KEY-----\nMIIdkim\n-----END PRIVATE KEY-----\n",
    0o600,
    T0 + 1,
  );
  const owner = opendkimIds();
  if (owner) chownSync(key, owner.uid, owner.gid);
  put(s, "/etc/dkimkeys/KeyTable", "table\n");
  if (opts.tlsMode === "self-signed") {
    put(s, PATHS.selfSignedCert, "-----BEGIN CERTIFICATE-----\nself\n", 0o644, T0 + 2);
    put(s, PATHS.selfSignedKey, "-----BEGIN PRIVATE KEY-----\nself\n", 0o600, T0 + 3);
  } else {
    dir(s, "/var/lib/acme", 0o755);
    const account = "/var/lib/acme/accounts/acme-v02.api.letsencrypt.org%2fdirectory/abc";
    put(s, `${account}/privkey`, "account key\n", 0o600, T0 + 4);
    put(s, `${account}/meta`, '{"contact":[]}\n', 0o644, T0 + 5);
    put(s, "/var/lib/acme/keys/k1/privkey", "cert key\n", 0o600, T0 + 6);
    put(s, "/var/lib/acme/certs/c1/cert", "cert\n", 0o644, T0 + 7);
    symlinkSync("../../keys/k1/privkey", join(s.root, "/var/lib/acme/certs/c1/privkey"));
    mkdirSync(join(s.root, "/var/lib/acme/live"), { recursive: true });
    symlinkSync("../certs/c1", join(s.root, `/var/lib/acme/live/${DOMAIN}`));
    put(s, `/var/lib/acme/desired/${DOMAIN}`, "names\n", 0o644, T0 + 8);
    put(s, "/var/lib/acme/conf/target", "request: x\n", 0o644, T0 + 9);
    put(s, "/var/lib/acme/tmp/half-written", "tmp\n");
  }
  put(s, "/etc/chatmail-nocreate", "", 0o644, T0 + 10);
  put(s, "/etc/postfix/main.cf", "myhostname = x\n");
  put(s, MANIFEST.replace("owned", "runs.log"), "log\n");
  dir(s, MAILBOXES, 0o700);
  for (const [i, addr] of [ALICE, BOB].entries()) {
    dir(s, `${MAILBOXES}/${addr}`, 0o700);
    // The password's mtime is the last login, to the day.
    put(s, `${MAILBOXES}/${addr}/password`, `{PBKDF2}hash-of-${addr}`, 0o644, T0 - (i + 3) * DAY);
    put(s, `${MAILBOXES}/${addr}/enforceE2EEincoming`, "", 0o644, T0 - 10 * DAY);
    put(s, `${MAILBOXES}/${addr}/metadata.json`, `{"devicetoken":{"tok-${i}":${T0}}}`, 0o644, T0 - DAY);
    for (const sub of ["cur", "new", "tmp"]) dir(s, `${MAILBOXES}/${addr}/${sub}`, 0o700);
    put(s, `${MAILBOXES}/${addr}/cur/1600000000.M1P1.host,S=6,W=7:2,S`, `msg ${i}\n`, 0o600, T0 - 2 * DAY);
    put(s, `${MAILBOXES}/${addr}/new/1600000100.M2P2.host,S=6,W=7`, `new ${i}\n`, 0o600, T0 - DAY);
    put(s, `${MAILBOXES}/${addr}/dovecot-uidlist`, "3 V1 N2\n", 0o600, T0 - DAY + 5);
    put(s, `${MAILBOXES}/${addr}/maildirsize`, "1000S\n", 0o600, T0 - DAY + 6);
    // A folder, with a message Dovecot copied there as a hard link, and a file named like an account file
    // deeper down, which belongs to the mailboxes part.
    dir(s, `${MAILBOXES}/${addr}/.Sent/cur`, 0o700);
    linkSync(
      join(s.root, `${MAILBOXES}/${addr}/cur/1600000000.M1P1.host,S=6,W=7:2,S`),
      join(s.root, `${MAILBOXES}/${addr}/.Sent/cur/1600000000.M1P1.host,S=6,W=7:2,S`),
    );
    put(s, `${MAILBOXES}/${addr}/.Sent/password`, "not the account's\n", 0o600, T0 - 7);
  }
  dir(s, `${MAILBOXES}/pending_notifications`, 0o755);
  put(s, `${MAILBOXES}/pending_notifications/0123456789abcdef`, `${ALICE}\n${T0}\ntok-0`, 0o644, T0 - 60);
  put(s, `${MAILBOXES}/not-an-account/stray`, "x\n");
}

let ids: { uid: number; gid: number } | undefined | null = null;
/** The ids of the opendkim user on this machine (Debian's opendkim package), to check owner names are kept. */
export function opendkimIds(): { uid: number; gid: number } | undefined {
  if (ids === null) {
    const uid = spawnSync("id", ["-u", "opendkim"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "opendkim"], { encoding: "utf8" });
    ids =
      uid.status === 0 && gid.status === 0 ? { uid: Number(uid.stdout), gid: Number(gid.stdout) } : undefined;
  }
  return ids;
}

export interface Entry {
  readonly path: string;
  readonly type: "dir" | "file" | "link";
  readonly mode: string;
  readonly uid: number;
  /** Files: sha256 of the content and mtime; links: target and mtime. */
  readonly content?: string;
  readonly mtime?: number;
  readonly links?: number;
}

/** Every entry below the server's root, by server path, sorted. */
export function listing(s: Server, under = "/"): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    const full = join(s.root, rel);
    if (!existsSync(full) && !isLink(full)) return;
    for (const name of readdirSync(full).sort()) {
      const path = rel === "/" ? `/${name}` : `${rel}/${name}`;
      const st = lstatSync(join(s.root, path));
      const mode = (st.mode & 0o7777).toString(8).padStart(4, "0");
      if (st.isDirectory()) {
        out.push({ path, type: "dir", mode, uid: st.uid });
        walk(path);
      } else if (st.isSymbolicLink())
        out.push({
          path,
          type: "link",
          mode,
          uid: st.uid,
          content: readlinkSync(join(s.root, path)),
          mtime: Math.floor(st.mtimeMs / 1000),
        });
      else
        out.push({
          path,
          type: "file",
          mode,
          uid: st.uid,
          content: createHash("sha256")
            .update(readFileSync(join(s.root, path)))
            .digest("hex"),
          mtime: Math.floor(st.mtimeMs / 1000),
          links: st.nlink,
        });
    }
  };
  walk(under === "/" ? "/" : under);
  return out;
}

const isLink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

/** The listing without the entries at or below `paths`. */
export const without = (entries: readonly Entry[], paths: readonly string[]) =>
  entries.filter((e) => !paths.some((p) => e.path === p || e.path.startsWith(`${p}/`)));

/** Paths only. */
export const paths = (entries: readonly Entry[]) => entries.map((e) => e.path);
