// The host itself: system users, apt and journald settings, the mail name, kernel limits, the mailbox root, the
// version stamp and the chatmail.ini every daemon reads, as cmdeploy prepares a host (chatmail/relay 1.12.0,
// cmdeploy/src/cmdeploy/deployers.py; docs/relay.md, 'Files on the server').
import { renderChatmailIni } from "../../config";
import type { PlanContext } from "../context";
import { PATHS, USERS } from "../facts";
import { contentFile, directory, ids, line, service, sysctl, templateFile, user } from "../units";
import type { Unit } from "../types";

/** Dovecot watches every mailbox with inotify; Debian's defaults run out with a few thousand IMAP clients. */
const INOTIFY_LIMIT = 65535;

export function base(ctx: PlanContext): Unit[] {
  const { config, assets } = ctx;
  // Debian 12 keeps the journal on disk in /var/log/journal; with volatile storage those old logs would stay
  // there forever, so they go when the setting is first written (journald restarts in the activate phase).
  const journald = templateFile(ctx, "/etc/systemd/journald.conf", "systemd/journald.conf.njk", {
    then: "rm -rf /var/log/journal",
  });
  return [
    user(USERS.vmail, { home: "/home/vmail" }),
    user(USERS.opendkim, { home: "/run/opendkim" }),
    // The plan's own installs pass --no-install-recommends; this keeps the operator's later apt runs (and
    // unattended upgrades) from pulling in recommended packages too (as chatmail/relay 1.12.0 does,
    // cmdeploy/src/cmdeploy/deployers.py).
    templateFile(ctx, "/etc/apt/apt.conf.d/00InstallRecommends", "apt/00InstallRecommends.njk"),
    sysctl("fs.inotify.max_user_instances", INOTIFY_LIMIT),
    sysctl("fs.inotify.max_user_watches", INOTIFY_LIMIT),
    // Postfix takes the name of locally generated mail (bounces) from here; a bare name, no comment allowed.
    contentFile("/etc/mailname", `${config.mailDomain}\n`),
    journald,
    // Login shells and programs started from them read the time zone once instead of stat()ing /etc/localtime
    // at every timestamp. The file belongs to the OS, so only this line is managed. Dovecot, which systemd starts
    // without /etc/environment, gets the same setting from its drop-in (dovecot part).
    line("/etc/environment", "TZ=:/etc/localtime", "TZ="),
    // Accounts live here: whatever later plans say, the directory is never removed.
    directory(config.mailboxesDir, { owner: USERS.vmail, mode: "0700", removal: "never" }),
    contentFile(PATHS.version, assets.version),
    // The daemons (user vmail) read it; it carries the invite tokens when there are any.
    contentFile(PATHS.chatmailIni, renderChatmailIni(config), {
      group: USERS.vmail,
      mode: "0640",
      secret: config.inviteTokens.length > 0,
    }),
    service("systemd-journald.service", { restartOn: ids([journald]) }),
  ];
}
