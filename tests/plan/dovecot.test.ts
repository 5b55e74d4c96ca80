import { describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { planFor, text } from "./helpers";

const conf = (ini: Record<string, string> = {}) => text(planFor(ini), "/etc/dovecot/dovecot.conf");

describe("dovecot part", () => {
  it("keeps indexes in memory and mail below mailboxesDir", () => {
    expect(conf({ mailboxes_dir: "/srv/mail" })).toMatch(
      /^mail_location = maildir:\/srv\/mail\/%u:INDEX=MEMORY$/m,
    );
  });

  it("sets the quota from maxMailboxSize and maxMessageSize and trims full mailboxes to 70%", () => {
    const c = conf({ max_mailbox_size: "2G", max_message_size: "2000000" });
    expect(c).toMatch(/^\s*quota_rule = \*:storage=2048M$/m);
    expect(c).toMatch(/^\s*quota_max_mail_size = 2000000$/m);
    expect(c).toMatch(
      new RegExp(
        `quota_warning = storage=75%% quota-warning 1433 /home/vmail/mail/chat\\.example\\.org/%u$`,
        "m",
      ),
    );
    expect(c).toContain(
      `executable = script ${PATHS.node} ${PATHS.daemonBundle} ${PATHS.chatmailIni} quota-expire`,
    );
  });

  it("limits IMAP processes to maxImapConnections", () => {
    expect(conf({ max_imap_connections: "321" })).toMatch(/^\s*process_limit = 321$/m);
  });

  it("talks to doveauth, metadata and lastlogin on their sockets", () => {
    const plan = planFor();
    expect(text(plan, "/etc/dovecot/auth.conf")).toMatch(
      new RegExp(`^uri = proxy:${PATHS.doveauthSocket}:auth$`, "m"),
    );
    expect(conf()).toContain(`mail_attribute_dict = proxy:${PATHS.metadataSocket}:metadata`);
    expect(conf()).toContain(`last_login_dict = proxy:${PATHS.lastloginSocket}:lastlogin`);
    expect(conf()).toContain("push_notification_driver = lua:file=/etc/dovecot/push_notification.lua");
  });

  it("sends doveauth the password, the user and the client address, each %E-escaped", () => {
    expect(text(planFor(), "/etc/dovecot/auth.conf")).toMatch(/^password_key = passdb\/%Ew"%Eu"%E\{rip\}$/m);
  });

  it("serves imaps to clients from the 443 multiplexer on loopback, trusting PROXY headers only from there", () => {
    const c = conf();
    expect(c).toMatch(
      /inet_listener imaps_443 \{\s+address = 127\.0\.0\.1\s+port = 8993\s+ssl = yes\s+haproxy = yes\s+\}/,
    );
    expect(c).toMatch(/^haproxy_trusted_networks = 127\.0\.0\.1$/m);
  });

  it("switches compression, hibernation and raw logs with imapCompress and imapRawlog", () => {
    expect(conf()).toContain("imap_hibernate_timeout = 30s");
    expect(conf()).not.toContain("imap_zlib");
    expect(conf()).not.toContain("rawlog");
    const c = conf({ imap_compress: "true", imap_rawlog: "true" });
    expect(c).toContain("imap_zlib");
    expect(c).not.toContain("imap_hibernate_timeout");
    expect(c).toContain("executable = script-login -d rawlog");
  });

  it("listens on IPv4 only with disableIpv6 and serves metrics only with mtailAddress", () => {
    expect(conf()).not.toMatch(/^listen/m);
    expect(conf({ disable_ipv6: "true" })).toMatch(/^listen = 0\.0\.0\.0$/m);
    expect(conf()).not.toContain("service stats");
    expect(conf({ mtail_address: "10.0.0.5" })).toMatch(/address = 10\.0\.0\.5\n\s*port = 3904/);
  });

  it("names the operator as admin only when privacyMail is set", () => {
    expect(conf()).not.toContain("mail_server_admin");
    expect(conf({ privacy_mail: "privacy@example.org" })).toContain(
      "mail_server_admin = mailto:privacy@example.org",
    );
  });

  it("refuses debian-13 before changing anything, as its Dovecot 2.4 reads another format", () => {
    const check = planFor({ server_os: "debian-13" }).units.find((u) => u.id === "check:dovecot-version");
    expect(check?.phase).toBe("preflight");
    expect(planFor().units.some((u) => u.id === "check:dovecot-version")).toBe(false);
  });
});
