// Dovecot: IMAP for the clients and LMTP delivery from Postfix (docs/relay.md, 'Dovecot'; configured as in
// chatmail/relay 1.12.0, cmdeploy/src/cmdeploy/dovecot/dovecot.conf.j2). Accounts come from doveauth over a dict
// socket; IMAP METADATA (push tokens) and last-login go to the metadata and lastlogin daemons; a Lua hook tells
// the metadata daemon about new mail.
//
// We install Debian's dovecot packages, not the patched 2.3.21 debs cmdeploy downloads from download.delta.chat:
// the patch only removes a 0.5 s LMTP delivery delay, and Debian's packages have every plugin the config needs
// (docs/decisions.md, "Debian's Dovecot"). Debian 12 ships Dovecot 2.3 and Debian 13 Dovecot 2.4, whose
// configuration format differs throughout, so each serverOs gets its own templates (templates/dovecot/ and
// templates/dovecot/2.4/). Dovecot 2.4 also dropped the dict passdb and userdb: there a Lua script (auth.lua)
// asks doveauth over the same socket and protocol, with dovecot-auth-lua and lua-socket.
import type { PlanContext } from "../context";
import { PATHS, PORTS } from "../facts";
import { directory, ids, mailServiceState, packages, service, templateFile, validation } from "../units";
import type { Unit } from "../types";
import { tlsReady } from "./tls";

/**
 * Expiry frees a full mailbox down to this share of the quota, starting with the oldest messages (as
 * chatmail/relay 1.12.0, chatmaild/src/chatmaild/expire.py, QUOTA_CLEANUP_FACTOR).
 */
const QUOTA_EXPIRE_TARGET_PERCENT = 70;
/** Dovecot calls the quota-warning service when a mailbox passes this share of its quota. */
const QUOTA_WARNING_PERCENT = 75;

/** The configuration files of each Dovecot: /etc/dovecot/<name> from its template. */
const CONFIG_FILES = {
  "debian-12": {
    "dovecot.conf": "dovecot/dovecot.conf.njk",
    "auth.conf": "dovecot/auth.conf.njk",
    "push_notification.lua": "dovecot/push_notification.lua.njk",
  },
  "debian-13": {
    "dovecot.conf": "dovecot/2.4/dovecot.conf.njk",
    "auth.lua": "dovecot/2.4/auth.lua.njk",
    "push_notification.lua": "dovecot/push_notification.lua.njk",
  },
} as const;

/** The Lua mail plugins (mail_lua, push_notification_lua) are part of Debian's dovecot-core. */
const PACKAGES = {
  "debian-12": ["dovecot-core", "dovecot-imapd", "dovecot-lmtpd"],
  // Debian 13 packs Lua passdb and userdb separately (dovecot-auth-lua); lua-socket gives auth.lua its socket.
  "debian-13": ["dovecot-core", "dovecot-imapd", "dovecot-lmtpd", "dovecot-auth-lua", "lua-socket"],
} as const;

export function dovecot(ctx: PlanContext): Unit[] {
  const { config, vars } = ctx;
  const mailboxSizeMb = vars.maxMailboxSizeMb as number;
  const dovecotVars = {
    // Indexes are kept in memory only (issue 2): clients re-sync cheaply, and no index files fill the disk.
    mailLocation: `maildir:${config.mailboxesDir}/%u:INDEX=MEMORY`,
    // Dovecot 2.4 names the same folder in its own variable syntax.
    mailPath: `${config.mailboxesDir}/%{user}`,
    quotaWarningPercent: QUOTA_WARNING_PERCENT,
    quotaExpireTargetMb: Math.floor((mailboxSizeMb * QUOTA_EXPIRE_TARGET_PERCENT) / 100),
    quotaExpireCommand: `${PATHS.node} ${PATHS.daemonBundle} ${PATHS.chatmailIni} quota-expire`,
    statsAddress: config.mtailAddress ?? "",
    statsPort: PORTS.dovecotStats,
  };
  const files = [
    ...Object.entries(CONFIG_FILES[config.serverOs]).map(([name, template]) =>
      templateFile(ctx, `/etc/dovecot/${name}`, template, { vars: dovecotVars }),
    ),
    templateFile(
      ctx,
      "/etc/systemd/system/dovecot.service.d/10-chatmail.conf",
      "dovecot/10-chatmail.conf.njk",
    ),
  ];
  return [
    packages("dovecot", [...PACKAGES[config.serverOs]]),
    ...(config.serverOs === "debian-13" ? [postfixPrivate()] : []),
    ...files,
    // doveconf reads the certificate files too, so it waits for them.
    validation("dovecot-config", "dovecot", "doveconf -n >/dev/null", files, tlsReady(config)),
    service("dovecot.service", {
      restartOn: ids(files),
      after: ["check:dovecot-config", ...tlsReady(config)],
      ...mailServiceState(config),
    }),
  ];
}

/**
 * Dovecot's auth and LMTP sockets live in Postfix's private directory. Debian 12's postfix package makes it;
 * Debian 13's leaves it to the first `postfix start`, which here comes after Dovecot's (postfix.service waits for
 * dovecot.service), so the plan makes it as Postfix would.
 */
function postfixPrivate(): Unit {
  return directory("/var/spool/postfix/private", {
    owner: "postfix",
    group: "root",
    mode: "0700",
    removal: "never",
  });
}
