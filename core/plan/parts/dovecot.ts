// Dovecot: IMAP for the clients and LMTP delivery from Postfix (docs/relay.md, 'Dovecot'; configured as in
// chatmail/relay 1.12.0, cmdeploy/src/cmdeploy/dovecot/dovecot.conf.j2). Accounts come from doveauth over a dict
// socket; IMAP METADATA (push tokens) and last-login go to the metadata and lastlogin daemons; a Lua hook tells
// the metadata daemon about new mail.
//
// We install Debian's dovecot packages, not the patched 2.3.21 debs cmdeploy downloads from download.delta.chat:
// the patch only removes a 0.5 s LMTP delivery delay, and Debian 12's 2.3.19 has every plugin the config needs
// (docs/decisions.md, "Debian's Dovecot"). The config is Dovecot 2.3 syntax; Debian 13 ships Dovecot 2.4, see
// the check below.
import type { PlanContext } from "../context";
import { PATHS, PORTS } from "../facts";
import { check, ids, mailServiceState, packages, service, templateFile, validation } from "../units";
import type { Unit } from "../types";
import { tlsReady } from "./tls";

/**
 * Expiry frees a full mailbox down to this share of the quota, starting with the oldest messages (as
 * chatmail/relay 1.12.0, chatmaild/src/chatmaild/expire.py, QUOTA_CLEANUP_FACTOR).
 */
const QUOTA_EXPIRE_TARGET_PERCENT = 70;
/** Dovecot calls the quota-warning service when a mailbox passes this share of its quota. */
const QUOTA_WARNING_PERCENT = 75;

export function dovecot(ctx: PlanContext): Unit[] {
  const { config, vars } = ctx;
  const mailboxSizeMb = vars.maxMailboxSizeMb as number;
  const dovecotVars = {
    // Indexes are kept in memory only (issue 2): clients re-sync cheaply, and no index files fill the disk.
    mailLocation: `maildir:${config.mailboxesDir}/%u:INDEX=MEMORY`,
    quotaWarningPercent: QUOTA_WARNING_PERCENT,
    quotaExpireTargetMb: Math.floor((mailboxSizeMb * QUOTA_EXPIRE_TARGET_PERCENT) / 100),
    quotaExpireCommand: `${PATHS.node} ${PATHS.daemonBundle} ${PATHS.chatmailIni} quota-expire`,
    statsAddress: config.mtailAddress ?? "",
    statsPort: PORTS.dovecotStats,
  };
  const file = (name: string, template: string) =>
    templateFile(ctx, `/etc/dovecot/${name}`, template, { vars: dovecotVars });
  const files = [
    file("dovecot.conf", "dovecot/dovecot.conf.njk"),
    file("auth.conf", "dovecot/auth.conf.njk"),
    file("push_notification.lua", "dovecot/push_notification.lua.njk"),
    templateFile(
      ctx,
      "/etc/systemd/system/dovecot.service.d/10-chatmail.conf",
      "dovecot/10-chatmail.conf.njk",
    ),
  ];
  const units: Unit[] = [];
  if (config.serverOs === "debian-13") {
    units.push(
      check(
        "dovecot-version",
        "the server's Dovecot reads this relay's dovecot.conf",
        `echo "serverOs debian-13: Debian 13 ships Dovecot 2.4, whose configuration format this relay does not write yet; use debian-12" >&2\nexit 1`,
      ),
    );
  }
  return [
    ...units,
    // The Lua plugins (mail_lua, push_notification_lua) are part of Debian's dovecot-core.
    packages("dovecot", ["dovecot-core", "dovecot-imapd", "dovecot-lmtpd"]),
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
