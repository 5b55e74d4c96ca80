// A real Dovecot (Debian's dovecot-core/imapd/lmtpd) started without systemd in a temp dir, wired to our dict
// daemons the way the relay wires them: passdb/userdb through doveauth, IMAP METADATA through chatmail-metadata,
// last_login through lastlogin, and in LMTP the relay's own Lua push hook, rendered by the plan. Mail processes
// run as `nobody` (the test machine has no vmail user; doveauth answers uid/gid 65534 through --mail-user), so
// the daemons run as nobody too and own the mailboxes.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RelayConfig } from "../../core/config/options";
import { planRelay } from "../../core/plan";
import { testAssets, text } from "../plan/helpers";

export const NOBODY_UID = 65534;
export const NOGROUP_GID = 65534;

export interface DovecotPaths {
  root: string;
  mailboxesDir: string;
  runDir: string;
  doveauthSocket: string;
  metadataSocket: string;
  lastloginSocket: string;
}

/**
 * The LMTP push hook exactly as the relay installs it: the plan's /etc/dovecot/push_notification.lua for this
 * relay's config, rendered from templates/dovecot/push_notification.lua.njk.
 */
export function pushHook(config: RelayConfig): string {
  return text(planRelay(config, testAssets()), "/etc/dovecot/push_notification.lua");
}

export function writeDovecotConfig(
  p: DovecotPaths,
  config: RelayConfig,
  imapPort: number,
  lmtpPort: number,
): string {
  const etc = join(p.root, "etc");
  mkdirSync(etc, { recursive: true });
  writeFileSync(
    join(etc, "auth.conf"),
    [
      `uri = proxy:${p.doveauthSocket}:auth`,
      "iterate_disable = no",
      "iterate_prefix = userdb/",
      "default_pass_scheme = plain",
      'password_key = passdb/%Ew"%Eu"%E{rip}',
      "user_key = userdb/%Eu",
      "",
    ].join("\n"),
  );
  writeFileSync(join(etc, "push_notification.lua"), pushHook(config));
  const conf = `
base_dir = ${p.runDir}/dovecot
state_dir = ${p.root}/state
log_path = ${p.root}/dovecot.log
instance_name = chatmaild-test-${imapPort}
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:${p.mailboxesDir}/%u
mail_attribute_dict = proxy:${p.metadataSocket}:metadata
first_valid_uid = ${NOBODY_UID}
passdb {
  driver = dict
  args = ${etc}/auth.conf
}
userdb {
  driver = dict
  args = ${etc}/auth.conf
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
protocol imap {
  mail_plugins = $mail_plugins last_login
  imap_metadata = yes
}
protocol lmtp {
  mail_plugins = $mail_plugins mail_lua notify push_notification push_notification_lua
}
plugin {
  last_login_dict = proxy:${p.lastloginSocket}:lastlogin
  last_login_precision = s
  push_notification_driver = lua:file=${etc}/push_notification.lua
}
`;
  const path = join(etc, "dovecot.conf");
  writeFileSync(path, conf);
  return path;
}

export function preparePaths(root: string, mailboxesDir: string): DovecotPaths {
  const runDir = join(root, "run");
  for (const d of [runDir, join(root, "state"), mailboxesDir]) mkdirSync(d, { recursive: true });
  // The daemons run as nobody: they need to reach and own these.
  chmodSync(root, 0o755);
  for (let d = mailboxesDir; d.startsWith(root) && d !== root; d = join(d, "..")) chmodSync(d, 0o755);
  chownSync(mailboxesDir, NOBODY_UID, NOGROUP_GID);
  chownSync(runDir, NOBODY_UID, NOGROUP_GID);
  return {
    root,
    mailboxesDir,
    runDir,
    doveauthSocket: join(runDir, "doveauth.socket"),
    metadataSocket: join(runDir, "metadata.socket"),
    lastloginSocket: join(runDir, "lastlogin.socket"),
  };
}

/** Starts Dovecot (it daemonizes); throws with its log when it does not come up. */
export function startDovecot(configPath: string, logPath: string): void {
  if (!existsSync("/usr/sbin/dovecot")) {
    throw new Error(
      "dovecot is not installed: apt-get install dovecot-core dovecot-imapd dovecot-lmtpd (.ci/debian-packages)",
    );
  }
  try {
    // No pipes: the daemonized master would inherit them and execFileSync would wait for EOF forever.
    execFileSync("/usr/sbin/dovecot", ["-c", configPath], { stdio: "ignore" });
  } catch (err) {
    const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
    throw new Error(`dovecot did not start: ${(err as Error).message}\n${log}`);
  }
}

export function stopDovecot(configPath: string): void {
  try {
    execFileSync("/usr/sbin/dovecot", ["-c", configPath, "stop"], { stdio: "ignore" });
  } catch {
    // already stopped
  }
}
