// A freshly booted test server made to look the way cmdeploy 1.7.0 (chatmail/relay 1.7.0) leaves a relay, so the
// continuity testbed can deploy this program on top and check that nothing was lost: accounts with cmdeploy's
// {SHA512-CRYPT} password files, mail in their maildirs and device tokens in metadata.json, the DKIM key in
// /etc/dkimkeys, the Python daemons' units running from a virtualenv, the cron files and other leftovers
// (core/plan/prune.ts CMDEPLOY_LEFTOVERS), and Postfix, Dovecot and OpenDKIM running with configuration of the
// shape 1.7.0 writes.
//
// Nothing here is copied from upstream: the files are short and shaped after chatmail/relay 1.7.0
// (cmdeploy/src/cmdeploy/postfix/main.cf.j2 and master.cf.j2, dovecot/dovecot.conf.j2 and auth.conf,
// opendkim/opendkim.conf, service/*.service.f, dovecot/expunge.cron.j2, metrics.cron.j2, and
// chatmaild/src/chatmaild/ini/chatmail.ini.f for the ini). The virtualenv holds stand-ins that sleep, so the units
// are really active without any Python. No ACME here: when the server has no certificate at acmetool's path, a
// self-signed stand-in goes there so that Dovecot (ssl = required) and Postfix start.
//
// The script takes `root=` (a prefix for every path it writes) and `live=` (0: skip what needs a real system:
// users, chown, systemctl, the config checks), so the unit test runs its file part in a temporary directory.
import { execFileSync } from "node:child_process";
import { PATHS, READ_BACK } from "../../../core/plan/facts";
import { REPLACED_UNITS } from "../../../core/plan/parts/daemons";
import { CMDEPLOY_TURN_UNIT } from "../../../core/plan/parts/turn";
import { CMDEPLOY_LEFTOVERS } from "../../../core/plan/prune";
import { q } from "../../../core/plan/sh";
import { CHATMAIL_INI, DOVEAUTH_SOCKET, LASTLOGIN_SOCKET, METADATA_SOCKET } from "../../../core/server";
import { newSalt } from "../../../daemons/doveauth/pbkdf2";
import type { Ssh } from "../ssh";
import type { Account } from "../suite/clients";

/** An account as a cmdeploy relay's user left it. */
export interface CmdeployAccount extends Account {
  /** Raw RFC 5322 messages in its INBOX, already read (flag S). */
  readonly messages: readonly string[];
  /** The push device token its client set with SETMETADATA. */
  readonly deviceToken?: string;
}

/** What prepareCmdeployServer made. */
export interface CmdeployServer {
  /** The DKIM public key (base64 SubjectPublicKeyInfo, as READ_BACK.dkimPublicKey prints it). */
  readonly dkimPublicKey: string;
  /** cmdeploy's daemon units now active. */
  readonly units: string[];
  /** The CMDEPLOY_LEFTOVERS paths now on the server. */
  readonly leftovers: string[];
}

/** What the server scripts need of the testbed's SSH connection. */
export type CmdeploySsh = Pick<Ssh, "exec">;

const CHATMAILD_DIR = "/usr/local/lib/chatmaild";
export const VENV = `${CHATMAILD_DIR}/venv`;
const DIST_FILE = `${CHATMAILD_DIR}/dist/chatmaild-0.2.tar.gz`;
const SYSTEMD_DIR = "/etc/systemd/system";

/**
 * chatmail.ini as `cmdeploy init DOMAIN` writes it at 1.7.0: mail_domain and every other key of the template with
 * its default (comments shortened). TLS keys came later (self-signed and external TLS are not 1.7.0 features).
 */
export function CMDEPLOY_INI(domain: string): string {
  return `[params]

# the relay's domain (written by cmdeploy init)
mail_domain = ${domain}

# limits of chatmail addresses
max_user_send_per_minute = 60
max_mailbox_size = 100M
max_message_size = 31457280
delete_mails_after = 20
delete_large_after = 7
delete_inactive_users_after = 90
username_min_length = 9
username_max_length = 9
password_min_length = 9

# who may send or receive unencrypted mail
passthrough_senders =
passthrough_recipients = xstore@testrun.org echo@${domain}

# filtermail and Postfix reinjection ports
filtermail_smtp_port = 10080
postfix_reinject_port = 10025
filtermail_smtp_port_incoming = 10081
postfix_reinject_port_incoming = 10026

disable_ipv6 = False

# unset: the relay runs iroh-relay itself and advertises https://${domain}
# iroh_relay =

# unset: mtail does not run
# mtail_address = 127.0.0.1

imap_rawlog = false

# privacy policy contacts
privacy_postal =
privacy_mail =
privacy_pdo =
privacy_supervisor =
`;
}

/**
 * cmdeploy's password file content for `password`: "{SHA512-CRYPT}" and glibc's crypt(3) SHA-512 form
 * ($6$<16 salt chars>$<86 chars>, 5000 rounds), computed here with `openssl passwd -6`.
 */
export function sha512CryptPassword(password: string, salt: string = newSalt()): string {
  if (/[\n\r]/.test(password))
    throw new Error("a password with a line break cannot be hashed with openssl -stdin");
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error(`not a crypt salt: ${salt}`);
  const hash = execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], {
    input: `${password}\n`,
    encoding: "utf8",
  }).trim();
  if (!/^\$6\$[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/.test(hash))
    throw new Error(`openssl passwd -6 gave ${hash}`);
  return `{SHA512-CRYPT}${hash}`;
}

/** A message as Dovecot's LMTP stores it in a maildir: LF line ends. */
export const storedForm = (message: string) => message.replace(/\r\n/g, "\n");

/**
 * Dovecot's name for a delivered maildir file, `<time>.M<n>P<pid>.<host>,S=<size>,W=<CRLF size>:2,<flags>`: the
 * size fields are the file's and the message's size with CRLF line ends (W=), as Dovecot writes and reads them.
 */
export function maildirName(stored: string, time: number, n: number, host: string, flags = "S"): string {
  if (!/^[A-Za-z0-9-]+$/.test(host)) throw new Error(`not a plain host name for a maildir file: ${host}`);
  const size = Buffer.byteLength(stored);
  const vsize = size + (stored.match(/\n/g) ?? []).length;
  return `${time}.M${n}P4242.${host},S=${size},W=${vsize}:2,${flags}`;
}

/** A file the preparation writes: content, mode and owner (owner only on a live server). */
interface Entry {
  readonly path: string;
  readonly content: string | Buffer;
  readonly mode: string;
  readonly owner?: string;
  /** Modification time, seconds. */
  readonly mtime?: number;
}

/** The daemon units cmdeploy writes (service/*.service.f at 1.7.0), each running a program of the virtualenv. */
function daemonUnit(name: string): string {
  const shapes: Record<string, { description: string; exec: string; service: string[] }> = {
    "doveauth.service": {
      description: "Chatmail dict authentication proxy for dovecot",
      exec: `${VENV}/bin/doveauth ${DOVEAUTH_SOCKET} ${CHATMAIL_INI}`,
      service: ["User=vmail", "RuntimeDirectory=doveauth", "UMask=0077"],
    },
    // Before 1.0 (Oct 2023), doveauth ran as doveauth-dictproxy.service; 1.7.0 still stops and disables it.
    "doveauth-dictproxy.service": {
      description: "Dict authentication proxy for dovecot",
      exec: `${VENV}/bin/doveauth-dictproxy /run/dovecot/doveauth.socket vmail /home/vmail/passdb.sqlite`,
      service: [],
    },
    "chatmail-metadata.service": {
      description: "Chatmail dict proxy for IMAP METADATA",
      exec: `${VENV}/bin/chatmail-metadata ${METADATA_SOCKET} ${CHATMAIL_INI}`,
      service: ["User=vmail", "RuntimeDirectory=chatmail-metadata", "UMask=0077"],
    },
    "lastlogin.service": {
      description: "Dict proxy for last-login tracking",
      exec: `${VENV}/bin/lastlogin ${LASTLOGIN_SOCKET} ${CHATMAIL_INI}`,
      service: ["User=vmail", "RuntimeDirectory=chatmail-lastlogin"],
    },
    // 1.7.0's echobot unit also has some twenty sandboxing lines; these are the ones that shape the server.
    "echobot.service": {
      description: "Chatmail echo bot for testing it works",
      exec: `${VENV}/bin/echobot ${CHATMAIL_INI}`,
      service: [
        `Environment="PATH=${VENV}:$PATH"`,
        "User=echobot",
        "Group=echobot",
        "StateDirectory=echobot",
        "RuntimeDirectory=echobot",
        "WorkingDirectory=/var/lib/echobot",
        "NoNewPrivileges=true",
        "UMask=0077",
      ],
    },
    "filtermail.service": {
      description: "Outgoing Chatmail Postfix before queue filter",
      exec: `${VENV}/bin/filtermail ${CHATMAIL_INI} outgoing`,
      service: ["User=vmail"],
    },
    "filtermail-incoming.service": {
      description: "Incoming Chatmail Postfix before queue filter",
      exec: `${VENV}/bin/filtermail ${CHATMAIL_INI} incoming`,
      service: ["User=vmail"],
    },
    // Not in 1.7.0: later releases' Rust filtermail adds it (1.12.0 runs /usr/local/bin/filtermail). Here it runs
    // the virtualenv's stand-in like the others, so that every unit chatmaild replaces is exercised.
    "filtermail-transport.service": {
      description: "Chatmail transport service",
      exec: `${VENV}/bin/filtermail ${CHATMAIL_INI} transport`,
      service: ["User=vmail", "LimitNOFILE=524288"],
    },
  };
  const shape = shapes[name];
  if (!shape) throw new Error(`no cmdeploy unit shape for ${name}`);
  return [
    "[Unit]",
    `Description=${shape.description}`,
    "",
    "[Service]",
    `ExecStart=${shape.exec}`,
    "Restart=always",
    "RestartSec=30",
    ...shape.service,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Every unit of cmdeploy's the relay stops: the Python daemons', and chatmail-turn's of later releases. */
export const CMDEPLOY_UNITS = [...REPLACED_UNITS, CMDEPLOY_TURN_UNIT];

/** The programs of the virtualenv the units and cron jobs run; each stand-in only sleeps. */
const VENV_PROGRAMS = [
  "doveauth",
  "doveauth-dictproxy",
  "chatmail-metadata",
  "lastlogin",
  "echobot",
  "filtermail",
  "chatmail-metrics",
  "delete_inactive_users",
];
const STAND_IN =
  "#!/bin/sh\n# stand-in for a chatmaild console script of the Python virtualenv\nexec /bin/sleep infinity\n";

function postfixMainCf(domain: string): string {
  return `# Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/postfix/main.cf.j2 (not a copy).
myorigin = ${domain}
myhostname = ${domain}
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6

smtpd_tls_cert_file = /var/lib/acme/live/${domain}/fullchain
smtpd_tls_key_file = /var/lib/acme/live/${domain}/privkey
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_exclude_ciphers = aNULL, RC4, MD5, DES
tls_preempt_cipherlist = yes
smtp_tls_CApath = /etc/ssl/certs
smtp_tls_security_level = verify
smtp_tls_servername = hostname
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
smtp_tls_policy_maps = inline:{nauta.cu=may}

smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
mydestination =
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
message_size_limit = 31457280
recipient_delimiter = +
inet_interfaces = all
inet_protocols = all

# Mail for the relay's domain goes to Dovecot over LMTP.
virtual_transport = lmtp:unix:private/dovecot-lmtp
virtual_mailbox_domains = ${domain}

mua_client_restrictions = permit_sasl_authenticated, reject
mua_sender_restrictions = reject_sender_login_mismatch, permit_sasl_authenticated, reject
mua_helo_restrictions = permit_mynetworks, reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname, permit
smtpd_sender_login_maps = regexp:/etc/postfix/login_map
smtpd_peername_lookup = no
`;
}

/** Debian's stock services plus cmdeploy's: filtermail as before-queue proxy, two loopback reinjection smtpds. */
function postfixMasterCf(): string {
  const mua = (name: string, extra: string[]) =>
    [
      `${name.padEnd(10)} inet  n       -       y       -       5000    smtpd`,
      `  -o syslog_name=postfix/${name}`,
      ...extra,
      "  -o smtpd_tls_security_level=encrypt",
      "  -o smtpd_tls_mandatory_protocols=>=TLSv1.3",
      "  -o smtpd_sasl_auth_enable=yes",
      "  -o smtpd_sasl_type=dovecot",
      "  -o smtpd_sasl_path=private/auth",
      "  -o smtpd_reject_unlisted_recipient=no",
      "  -o smtpd_client_restrictions=$mua_client_restrictions",
      "  -o smtpd_helo_restrictions=$mua_helo_restrictions",
      "  -o smtpd_sender_restrictions=$mua_sender_restrictions",
      "  -o smtpd_recipient_restrictions=",
      "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject",
      "  -o milter_macro_daemon_name=ORIGINATING",
      "  -o smtpd_client_connection_count_limit=1000",
      "  -o smtpd_proxy_filter=127.0.0.1:10080",
    ].join("\n");
  return `# Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/postfix/master.cf.j2 (not a copy).
# service   type  private unpriv  chroot  wakeup  maxproc command + args
smtp       inet  n       -       y       -       -       smtpd
  -o smtpd_proxy_filter=127.0.0.1:10081
${mua("submission", ["  -o smtpd_tls_auth_only=yes"])}
${mua("smtps", ["  -o smtpd_tls_wrappermode=yes"])}
pickup     unix  n       -       y       60      1       pickup
cleanup    unix  n       -       y       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       y       1000?   1       tlsmgr
rewrite    unix  -       -       y       -       -       trivial-rewrite
bounce     unix  -       -       y       -       0       bounce
defer      unix  -       -       y       -       0       bounce
trace      unix  -       -       y       -       0       bounce
verify     unix  -       -       y       -       1       verify
flush      unix  n       -       y       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       y       -       -       smtp
relay      unix  -       -       y       -       -       smtp
  -o syslog_name=postfix/$service_name
showq      unix  n       -       y       -       -       showq
error      unix  -       -       y       -       -       error
retry      unix  -       -       y       -       -       error
discard    unix  -       -       y       -       -       discard
lmtp       unix  -       -       y       -       -       lmtp
anvil      unix  -       -       y       -       1       anvil
scache     unix  -       -       y       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
filter     unix  -       n       n       -       -       lmtp
# Outgoing mail back from filtermail: DKIM-signed, client headers cleaned.
127.0.0.1:10025 inet n   -       n       -       10      smtpd
  -o syslog_name=postfix/reinject
  -o smtpd_milters=unix:opendkim/opendkim.sock
  -o cleanup_service_name=authclean
# Incoming mail back from filtermail: DKIM-verified.
127.0.0.1:10026 inet n   -       n       -       10      smtpd
  -o syslog_name=postfix/reinject_incoming
  -o smtpd_milters=unix:opendkim/opendkim.sock
authclean  unix  n       -       -       -       0       cleanup
  -o header_checks=regexp:/etc/postfix/submission_header_cleanup
`;
}

function dovecotConf(domain: string): string {
  return `## Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/dovecot/dovecot.conf.j2 (not a copy).
protocols = imap lmtp
auth_mechanisms = plain
default_client_limit = 20000
mail_server_admin = mailto:root@${domain}
mail_server_comment = Chatmail server
mail_plugins = zlib quota
imap_capability = +XDELTAPUSH XCHATMAIL

# Accounts come from doveauth's dict socket (auth.conf).
passdb {
  driver = dict
  args = /etc/dovecot/auth.conf
}
userdb {
  driver = dict
  args = /etc/dovecot/auth.conf
}

mail_location = maildir:/home/vmail/mail/${domain}/%u
namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \\Drafts
  }
  mailbox Junk {
    special_use = \\Junk
  }
  mailbox Trash {
    special_use = \\Trash
  }
  mailbox Sent {
    special_use = \\Sent
  }
  mailbox "Sent Messages" {
    special_use = \\Sent
  }
}
mail_uid = vmail
mail_gid = vmail
mail_privileged_group = vmail
mail_attribute_dict = proxy:${METADATA_SOCKET}:metadata

protocol imap {
  mail_plugins = $mail_plugins imap_zlib imap_quota last_login
  imap_metadata = yes
}
protocol lmtp {
  mail_plugins = $mail_plugins mail_lua notify push_notification push_notification_lua
}
plugin {
  last_login_dict = proxy:${LASTLOGIN_SOCKET}:lastlogin
  last_login_precision = s
  zlib_save = gz
  imap_compress_deflate_level = 6
  quota = maildir:User quota
  quota_rule = *:storage=100M
  quota_max_mail_size = 31457280
  quota_grace = 0
  push_notification_driver = lua:file=/etc/dovecot/push_notification.lua
}

service imap {
  process_limit = 50000
}
service lmtp {
  user = vmail
  unix_listener /var/spool/postfix/private/dovecot-lmtp {
    group = postfix
    mode = 0600
    user = postfix
  }
}
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service auth-worker {
  user = vmail
}
service imap-login {
  service_count = 0
  vsz_limit = 1G
  process_min_avail = 10
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

ssl = required
ssl_cert = </var/lib/acme/live/${domain}/fullchain
ssl_key = </var/lib/acme/live/${domain}/privkey
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = TLSv1.3
ssl_prefer_server_ciphers = yes
`;
}

/** Dovecot's dict passdb/userdb over doveauth's socket, keys as 1.7.0 sends them (no client address yet). */
const DOVECOT_AUTH_CONF = `# Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/dovecot/auth.conf (not a copy).
uri = proxy:${DOVEAUTH_SOCKET}:auth
iterate_disable = no
iterate_prefix = userdb/
default_pass_scheme = plain
password_key = passdb/%Ew"%Eu
user_key = userdb/%Eu
`;

/** The LMTP hook: a new incoming message sets /private/messagenew, which chatmail-metadata turns into a push. */
const PUSH_LUA = `-- Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/dovecot/push_notification.lua (not a copy).
function dovecot_lua_notify_begin_txn(user)
  return user
end

function dovecot_lua_notify_event_message_new(user, event)
  local mbox = user:mailbox(event.mailbox)
  mbox:sync()
  if user.username ~= event.from_address then
    mbox:metadata_set("/private/messagenew", "")
  end
  mbox:free()
end

function dovecot_lua_notify_end_txn(ctx, success)
end
`;

function opendkimConf(domain: string): string {
  return `# Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/opendkim/opendkim.conf (not a copy). 1.7.0 also
# sets ScreenPolicyScript and FinalPolicyScript (Lua: reject mail without a valid From-aligned signature),
# left out here.
Syslog yes
SyslogSuccess yes
Canonicalization relaxed/simple
On-BadSignature reject
On-KeyNotFound reject
On-NoSignature reject
Domain ${domain}
Selector opendkim
KeyFile ${PATHS.dkimPrivateKey}
KeyTable /etc/dkimkeys/KeyTable
SigningTable refile:/etc/dkimkeys/SigningTable
SignHeaders *,+autocrypt,+content-type
OversignHeaders from,reply-to,subject,date,to,cc,in-reply-to,references,autocrypt
UserID opendkim
UMask 007
Socket local:${PATHS.opendkimSocket}
PidFile /run/opendkim/opendkim.pid
TrustAnchorFile /usr/share/dns/root.key
`;
}

function expungeCron(domain: string): string {
  const mbox = `/home/vmail/mail/${domain}`;
  const find = (test: string) => `2 0 * * * vmail find ${mbox} ${test} -type f -delete`;
  return [
    "# Shaped after chatmail/relay 1.7.0 cmdeploy/src/cmdeploy/dovecot/expunge.cron.j2 (not a copy).",
    find("-path '*/cur/*' -mtime +7 -size +200k"),
    ...["cur", "new", "tmp"].flatMap((d) => [
      find(`-path '*/${d}/*' -mtime +20`),
      find(`-path '*/.*/${d}/*' -mtime +20`),
    ]),
    `3 0 * * * vmail find ${mbox} -name 'maildirsize' -type f -delete`,
    `4 0 * * * vmail ${VENV}/bin/delete_inactive_users ${CHATMAIL_INI}`,
    "",
  ].join("\n");
}

/** Every file the preparation writes, with the leftovers among them. */
export function cmdeployFiles(
  domain: string,
  accounts: readonly CmdeployAccount[],
  opts: { now: number; host: string; hashes: ReadonlyMap<string, string> },
): Entry[] {
  const mbox = `/home/vmail/mail/${domain}`;
  const files: Entry[] = [];
  const add = (path: string, content: string | Buffer, mode = "0644", owner?: string, mtime?: number) =>
    files.push({ path, content, mode, owner, mtime });
  const today = Math.floor(opts.now / 86400) * 86400;
  let n = 0;
  for (const acc of accounts) {
    const dir = `${mbox}/${acc.addr}`;
    const hash = opts.hashes.get(acc.addr);
    if (!hash) throw new Error(`no password hash for ${acc.addr}`);
    // doveauth (UMask=0077) writes the hash without a line end; its mtime is the last login, by day.
    add(`${dir}/password`, hash, "0600", "vmail:vmail", today);
    add(`${dir}/enforceE2EEincoming`, "", "0600", "vmail:vmail");
    acc.messages.forEach((message, i) => {
      const stored = storedForm(message);
      // Delivered over the last days, oldest first; none old enough for the expiry jobs.
      const time = opts.now - 3600 * (acc.messages.length - i);
      add(`${dir}/cur/${maildirName(stored, time, ++n, opts.host)}`, stored, "0600", "vmail:vmail", time);
    });
    if (acc.deviceToken !== undefined) {
      // chatmaild 1.7.0 metadata.py: FileDict JSON (Python's json.dump spacing), token -> unix time it was set.
      const json = `{"devicetoken": {${JSON.stringify(acc.deviceToken)}: ${opts.now - 3600}}}`;
      add(`${dir}/metadata.json`, json, "0600", "vmail:vmail");
      add(`${dir}/metadata.json.lock`, "", "0600", "vmail:vmail");
    }
  }
  add(CHATMAIL_INI, CMDEPLOY_INI(domain));
  for (const p of VENV_PROGRAMS) add(`${VENV}/bin/${p}`, STAND_IN, "0755");
  add(`${VENV}/pyvenv.cfg`, "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n");
  add(`${VENV}/lib/python3.11/site-packages/chatmaild/__init__.py`, "");
  for (const unit of REPLACED_UNITS) add(`${SYSTEMD_DIR}/${unit}`, daemonUnit(unit));
  // Not in 1.7.0: releases from 1.8.0 run chatmail-turn, a static binary, as turnserver.service. Its stand-in
  // sleeps like the others.
  add(
    "/usr/local/bin/chatmail-turn",
    "#!/bin/sh\n# stand-in for cmdeploy's chatmail-turn binary\nexec /bin/sleep infinity\n",
    "0755",
  );
  add(
    `${SYSTEMD_DIR}/${CMDEPLOY_TURN_UNIT}`,
    "[Unit]\nDescription=Chatmail TURN server\nAfter=network.target\n\n[Service]\nType=simple\n" +
      `ExecStart=/usr/local/bin/chatmail-turn --realm ${domain} --socket /run/chatmail-turn/turn.socket\n` +
      "Restart=always\nRuntimeDirectory=chatmail-turn\nUser=vmail\nGroup=vmail\n\n" +
      "[Install]\nWantedBy=multi-user.target\n",
  );
  add(
    "/etc/cron.d/chatmail-metrics",
    `*/5 * * * * root ${VENV}/bin/chatmail-metrics ${mbox} >/var/www/html/metrics\n`,
  );
  const accountsCount = accounts.length;
  add(
    "/var/www/html/metrics",
    [
      "# HELP total number of accounts",
      "# TYPE accounts gauge",
      `accounts ${accountsCount}`,
      "# HELP number of CI accounts",
      "# TYPE ci_accounts gauge",
      "ci_accounts 0",
      "# HELP number of non-CI accounts",
      "# TYPE nonci_accounts gauge",
      `nonci_accounts ${accountsCount}`,
      "",
    ].join("\n"),
  );
  add("/etc/cron.d/expunge", expungeCron(domain));
  add(
    "/etc/cron.d/acmetool",
    "SHELL=/bin/sh\nPATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin:/usr/local/sbin\nMAILTO=root\n" +
      "20 16 * * * root /usr/bin/acmetool --batch reconcile && systemctl reload dovecot && " +
      "systemctl reload postfix && systemctl reload nginx\n",
  );
  add(
    "/usr/lib/cgi-bin/newemail.py",
    `#!${VENV}/bin/python3\n"""Stand-in for cmdeploy's /new CGI: prints a JSON address and password."""\n` +
      'print("Content-Type: application/json")\nprint("")\n',
    "0755",
  );
  add(
    "/etc/mtail/delivered_mail.mtail",
    "# Stand-in for cmdeploy's mtail program.\ncounter delivered_mail\n/saved mail to INBOX$/ {\n  delivered_mail++\n}\n",
  );
  add(
    "/usr/local/bin/mtail",
    "#!/bin/sh\n# stand-in for cmdeploy's static mtail 3.0.8 binary\nexec /bin/sleep infinity\n",
    "0755",
  );
  // cmdeploy writes mtail's unit whether or not mtail_address is set; it runs only when it is.
  add(
    `${SYSTEMD_DIR}/mtail.service`,
    "[Unit]\nDescription=mtail\n\n[Service]\nType=simple\n" +
      'ExecStart=/bin/sh -c "journalctl -f -o short-iso -n 0 | /usr/local/bin/mtail --address=127.0.0.1 ' +
      '--port=3903 --progs /etc/mtail --logtostderr --logs -"\nRestart=on-failure\n\n' +
      "[Install]\nWantedBy=multi-user.target\n",
  );
  add("/etc/postfix/main.cf", postfixMainCf(domain));
  add("/etc/postfix/master.cf", postfixMasterCf());
  add(
    "/etc/postfix/submission_header_cleanup",
    "/^Received:/ IGNORE\n/^X-Originating-IP:/ IGNORE\n/^X-Mailer:/ IGNORE\n/^User-Agent:/ IGNORE\n" +
      "/^Subject:/ REPLACE Subject: [...]\n",
  );
  add("/etc/postfix/login_map", "/^(.*)$/\t${1}\n");
  add("/etc/dovecot/dovecot.conf", dovecotConf(domain));
  add("/etc/dovecot/auth.conf", DOVECOT_AUTH_CONF);
  add("/etc/dovecot/push_notification.lua", PUSH_LUA);
  add("/etc/opendkim.conf", opendkimConf(domain));
  add(
    "/etc/dkimkeys/KeyTable",
    `opendkim._domainkey.${domain} ${domain}:opendkim:${PATHS.dkimPrivateKey}\n`,
    "0644",
    "opendkim:opendkim",
  );
  add(
    "/etc/dkimkeys/SigningTable",
    `*@${domain} opendkim._domainkey.${domain}\n`,
    "0644",
    "opendkim:opendkim",
  );
  add(
    `${SYSTEMD_DIR}/opendkim.service.d/10-prevent-memory-leak.conf`,
    "[Service]\nRestart=always\nRuntimeMaxSec=1d\n",
  );
  add("/etc/mailname", `${domain}\n`);
  // cmdeploy's acmetool hook (1.7.0 cmdeploy/src/cmdeploy/acmetool/acmetool.hook): reloads on a new certificate.
  add(
    "/usr/lib/acme/hooks/nginx",
    '#!/bin/sh\nset -e\n[ "$1" = "live-updated" ] || exit 42\nsystemctl restart nginx.service\n' +
      "systemctl reload dovecot.service\nsystemctl reload postfix.service\n",
    "0744",
  );
  // The deployed revision (`git rev-parse HEAD` of the operator's checkout, then its `git diff`); a stand-in value.
  add(PATHS.version, "abd50e20c0ffee0000000000000000000000cafe\n", "0700");
  return files;
}

/** Directories with an owner or mode of their own (parents of files are made 0755 root). */
function cmdeployDirs(domain: string, accounts: readonly CmdeployAccount[]): Entry[] {
  const mbox = `/home/vmail/mail/${domain}`;
  const dir = (path: string, mode: string, owner?: string): Entry => ({ path, content: "", mode, owner });
  return [
    dir("/home/vmail", "0755", "vmail:vmail"),
    dir("/home/vmail/mail", "0700", "vmail:vmail"),
    dir(mbox, "0700", "vmail:vmail"),
    ...accounts.flatMap((acc) => [
      dir(`${mbox}/${acc.addr}`, "0700", "vmail:vmail"),
      ...["cur", "new", "tmp"].map((d) => dir(`${mbox}/${acc.addr}/${d}`, "0700", "vmail:vmail")),
    ]),
    dir(`${CHATMAILD_DIR}/dist`, "0755"),
    dir("/etc/dkimkeys", "0700", "opendkim:opendkim"),
    dir(PATHS.opendkimSocketDir, "0750", "opendkim:opendkim"),
  ];
}

/**
 * The preparation as one sh script: `root=` prefixes every path, `live=0` skips users, chown, systemctl and the
 * checks that need the real services. Each file's content travels base64-encoded, so any byte is safe.
 */
export function cmdeployScript(
  domain: string,
  accounts: readonly CmdeployAccount[],
  opts: { now: number; host: string; hashes: ReadonlyMap<string, string> },
): string {
  const files = cmdeployFiles(domain, accounts, opts);
  const dirs = cmdeployDirs(domain, accounts);
  const p = (path: string) => `"$root"${q(path)}`;
  const lines: string[] = [];
  for (const d of dirs) {
    lines.push(`mkdir -p ${p(d.path)} && chmod ${d.mode} ${p(d.path)}`);
    if (d.owner) lines.push(`own ${d.owner} ${p(d.path)}`);
  }
  for (const f of files) {
    const dirOf = f.path.slice(0, f.path.lastIndexOf("/"));
    lines.push(`[ -d ${p(dirOf)} ] || mkdir -p ${p(dirOf)}`);
    const b64 = Buffer.from(f.content)
      .toString("base64")
      .replace(/.{1,76}/g, "$&\n");
    lines.push(`base64 -d >${p(f.path)} <<'B64'\n${b64}B64`);
    lines.push(`chmod ${f.mode} ${p(f.path)}`);
    if (f.owner) lines.push(`own ${f.owner} ${p(f.path)}`);
    if (f.mtime !== undefined) lines.push(`touch -d @${f.mtime} ${p(f.path)}`);
  }
  const units = CMDEPLOY_UNITS.join(" ");
  const cert = `/var/lib/acme/live/${domain}`;
  return `set -eu
root=
live=1
# chown only on the real server, where the users exist.
own() { if [ "$live" = 1 ]; then chown "$@"; fi; }
export LC_ALL=C
umask 022

if [ "$live" = 1 ]; then
  # cmdeploy's users (pyinfra: groupadd -r, useradd -r -M); Debian's opendkim package made the opendkim user.
  getent group vmail >/dev/null || groupadd -r vmail
  getent passwd vmail >/dev/null || useradd -r -M -g vmail -d /home/vmail -s /bin/sh vmail
  getent group echobot >/dev/null || groupadd -r echobot
  getent passwd echobot >/dev/null || useradd -r -M -g echobot -d /home/echobot -s /bin/sh echobot
  # Postfix reaches OpenDKIM's milter socket through the opendkim group.
  usermod -a -G opendkim postfix
fi

${lines.join("\n")}

# cmdeploy's venv was made by virtualenv; its python3 is the interpreter newemail.py names.
ln -sfn /usr/bin/python3 ${p(`${VENV}/bin/python3`)}
# The chatmaild source archive pip installed from: a small real tarball.
pkg=$(mktemp -d)
mkdir "$pkg/chatmaild-0.2"
printf 'Metadata-Version: 2.1\\nName: chatmaild\\nVersion: 0.2\\n' >"$pkg/chatmaild-0.2/PKG-INFO"
tar -czf ${p(DIST_FILE)} -C "$pkg" chatmaild-0.2
rm -rf "$pkg"
chmod 0644 ${p(DIST_FILE)}

# The DKIM key, made once as cmdeploy does (opendkim-genkey, 2048-bit RSA, selector opendkim).
if [ ! -f ${p(PATHS.dkimPrivateKey)} ]; then
  opendkim-genkey -D ${p(PATHS.dkimKeyDir)} -d ${q(domain)} -s opendkim
fi
chmod 0600 ${p(PATHS.dkimPrivateKey)}
own opendkim:opendkim ${p(PATHS.dkimPrivateKey)} ${p(`${PATHS.dkimKeyDir}/opendkim.txt`)}

# acmetool's certificate path: a self-signed stand-in unless the server has one there (no ACME in the testbed).
if [ ! -f ${p(`${cert}/fullchain`)} ]; then
  mkdir -p ${p(cert)}
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${p(`${cert}/privkey`)})
  openssl req -x509 -key ${p(`${cert}/privkey`)} -days 30 -subj /CN=${q(domain)} \\
    -addext subjectAltName=DNS:${q(domain)},DNS:www.${q(domain)},DNS:mta-sts.${q(domain)} \\
    -out ${p(`${cert}/fullchain`)}
fi

[ "$live" = 1 ] || exit 0

[ -f /etc/aliases ] || echo "postmaster: root" >/etc/aliases
newaliases
postfix check
doveconf -n >/dev/null
opendkim -n
systemctl daemon-reload
systemctl enable --now ${units} 2>&1
systemctl restart opendkim dovecot postfix
# Type=simple units are active once started; give a failing one the time to show it.
sleep 2
bad=
for u in ${units} opendkim dovecot postfix@-; do
  systemctl is-active --quiet "$u" || bad="$bad $u"
done
if [ -n "$bad" ]; then
  for u in $bad; do systemctl status --no-pager --lines=15 "$u" >&2 || true; done
  echo "not active:$bad" >&2
  exit 1
fi
`;
}

/** Runs `script` from a temporary file on the server, so its stdin stays free and its size has no argv limit. */
async function runScript(ssh: CmdeploySsh, script: string): Promise<string> {
  const r = await ssh.exec('f=$(mktemp) && cat >"$f" && sh "$f"; rc=$?; rm -f "$f"; exit $rc', {
    stdin: script,
    timeoutMs: 5 * 60_000,
  });
  return r.stdout;
}

/** The hashes of the accounts' passwords, with fresh salts (one per account, as doveauth makes them). */
export function passwordHashes(accounts: readonly CmdeployAccount[]): Map<string, string> {
  return new Map(accounts.map((a) => [a.addr, sha512CryptPassword(a.password)]));
}

/** Makes the server look as cmdeploy 1.7.0 leaves a relay with these accounts (see the top of this file). */
export async function prepareCmdeployServer(
  ssh: CmdeploySsh,
  opts: { domain: string; accounts: readonly CmdeployAccount[] },
): Promise<CmdeployServer> {
  const host = "relay";
  const script = cmdeployScript(opts.domain, opts.accounts, {
    now: Math.floor(Date.now() / 1000),
    host,
    hashes: passwordHashes(opts.accounts),
  });
  await runScript(ssh, script);
  const dkimPublicKey = (await ssh.exec(READ_BACK.dkimPublicKey)).stdout.trim();
  if (!/^MII[A-Za-z0-9+/=]{300,}$/.test(dkimPublicKey))
    throw new Error(`no DKIM public key: ${dkimPublicKey}`);
  const state = await ssh.exec(
    CMDEPLOY_UNITS.map((u) => `if systemctl is-active --quiet ${u}; then echo unit ${u}; fi`)
      .concat(
        CMDEPLOY_LEFTOVERS.map((l) => `if [ -e ${q(l.entry.path)} ]; then echo path ${l.entry.path}; fi`),
      )
      .join("\n"),
  );
  const out = state.stdout.split("\n");
  const pick = (kind: string) =>
    out.filter((l) => l.startsWith(`${kind} `)).map((l) => l.slice(kind.length + 1));
  return { dkimPublicKey, units: pick("unit"), leftovers: pick("path") };
}

/**
 * The check behind cmdeployLeftoversGone as a script: prints each CMDEPLOY_LEFTOVERS path still present and each
 * replaced unit still loaded, active or enabled. `root=` and `live=` as in cmdeployScript.
 */
export function leftoversCheckScript(): string {
  const paths = CMDEPLOY_LEFTOVERS.map((l) => l.entry.path);
  return `root=
live=1
for p in ${paths.map(q).join(" ")}; do
  if [ -e "$root$p" ] || [ -L "$root$p" ]; then echo "$p"; fi
done
for u in ${CMDEPLOY_UNITS.join(" ")}; do
  # An enablement link left behind would start a unit file of that name again.
  if [ -L "$root/etc/systemd/system/multi-user.target.wants/$u" ]; then
    echo "/etc/systemd/system/multi-user.target.wants/$u"
  fi
  [ "$live" = 1 ] || continue
  load=$(systemctl show -p LoadState --value "$u")
  active=$(systemctl show -p ActiveState --value "$u")
  case "$load/$active" in
    not-found/inactive | not-found/failed) ;;
    *) echo "$u ($load, $active)" ;;
  esac
done
`;
}

/** What is left of cmdeploy after our deploy: leftover paths and units (loaded or running); empty when all gone. */
export async function cmdeployLeftoversGone(ssh: CmdeploySsh): Promise<string[]> {
  const out = await runScript(ssh, leftoversCheckScript());
  return out.split("\n").filter((l) => l !== "");
}
