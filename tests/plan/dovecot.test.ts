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
});

// Debian 13 ships Dovecot 2.4: the same relay in 2.4's configuration format. `doveconf -n` of Debian 13's Dovecot
// validates these files in the Debian 13 testbed (`npm run test:e2e -- --os debian-13`); the host runs Debian 12.
describe("dovecot part on debian-13 (Dovecot 2.4)", () => {
  const conf13 = (ini: Record<string, string> = {}) =>
    text(planFor({ server_os: "debian-13", ...ini }), "/etc/dovecot/dovecot.conf");

  it("writes 2.4's files with lua-socket for auth.lua, and no refusal, while debian-12 keeps 2.3's", () => {
    const plan = planFor({ server_os: "debian-13" });
    const dovecotFiles = (p: typeof plan) =>
      p.units.filter((u) => u.kind === "file" && u.path.startsWith("/etc/dovecot/")).map((u) => u.id);
    expect(dovecotFiles(plan)).toEqual([
      "file:/etc/dovecot/dovecot.conf",
      "file:/etc/dovecot/auth.lua",
      "file:/etc/dovecot/push_notification.lua",
    ]);
    expect(dovecotFiles(planFor())).toEqual([
      "file:/etc/dovecot/dovecot.conf",
      "file:/etc/dovecot/auth.conf",
      "file:/etc/dovecot/push_notification.lua",
    ]);
    const pkgs = (p: typeof plan) => {
      const u = p.units.find((x) => x.id === "packages:dovecot");
      return u?.kind === "packages" ? u.packages : [];
    };
    expect(pkgs(plan)).toEqual([
      "dovecot-core",
      "dovecot-imapd",
      "dovecot-lmtpd",
      "dovecot-auth-lua",
      "lua-socket",
    ]);
    expect(pkgs(planFor())).toEqual(["dovecot-core", "dovecot-imapd", "dovecot-lmtpd"]);
    // Debian 13's postfix package leaves private/ (Dovecot's socket folder) to Postfix's first start.
    const privateDir = (p: typeof plan) => p.units.find((u) => u.id === "dir:/var/spool/postfix/private");
    expect(privateDir(plan)).toMatchObject({
      owner: "postfix",
      group: "root",
      mode: "0700",
      removal: "never",
    });
    expect(privateDir(planFor())).toBeUndefined();
    // The check that refused debian-13 while only 2.3's format existed is gone.
    expect(plan.units.map((u) => u.id)).not.toContain("check:dovecot-version");
    expect(conf13()).toMatch(/^# Dovecot 2\.4 /m);
    expect(conf13()).toMatch(/^dovecot_config_version = 2\.4\.1\ndovecot_storage_version = 2\.4\.1$/m);
    // The Lua hook is the same script for both: its API did not change.
    expect(text(plan, "/etc/dovecot/push_notification.lua")).toBe(
      text(planFor(), "/etc/dovecot/push_notification.lua"),
    );
  });

  it("asks doveauth through auth.lua for passdb and userdb", () => {
    const c = conf13();
    expect(c).toMatch(/^passdb doveauth \{\n  driver = lua\n  lua_file = \/etc\/dovecot\/auth\.lua\n\}$/m);
    expect(c).toMatch(/^userdb doveauth \{\n  driver = lua\n  lua_file = \/etc\/dovecot\/auth\.lua\n\}$/m);
    expect(c).not.toMatch(/driver = dict/);
    const lua = text(planFor({ server_os: "debian-13" }), "/etc/dovecot/auth.lua");
    expect(lua).toContain(`local SOCKET = "${PATHS.doveauthSocket}"`);
    expect(lua).toMatch(/^function auth_passdb_lookup\(req\)$/m);
    expect(lua).toMatch(/^function auth_userdb_lookup\(req\)$/m);
  });

  it("keeps indexes in memory and mail below mailboxesDir, in 2.4's settings", () => {
    const c = conf13({ mailboxes_dir: "/srv/mail" });
    expect(c).toMatch(/^mail_driver = maildir\nmail_path = \/srv\/mail\/%\{user\}$/m);
    expect(c).toMatch(/^mail_index_path = MEMORY$/m);
    expect(c).not.toContain("mail_location");
  });

  it("sets the quota from maxMailboxSize and maxMessageSize and trims full mailboxes to 70%", () => {
    const c = conf13({ max_mailbox_size: "2G", max_message_size: "2000000" });
    expect(c).toMatch(/^\s*storage_size = 2048M$/m);
    expect(c).toMatch(/^quota_mail_size = 2000000$/m);
    expect(c).toMatch(/^\s*quota_storage_percentage = 75$/m);
    expect(c).toMatch(/^\s*args = 1433 \/home\/vmail\/mail\/chat\.example\.org\/%\{user\}$/m);
    expect(c).toContain(
      `executable = script ${PATHS.node} ${PATHS.daemonBundle} ${PATHS.chatmailIni} quota-expire`,
    );
  });

  it("talks to metadata and lastlogin as named dict proxies and loads the Lua push hook", () => {
    const c = conf13();
    expect(c).toMatch(
      new RegExp(
        `^mail_attribute \\{\\n  dict proxy \\{\\n    dict_proxy_socket_path = ${PATHS.metadataSocket}\\n    dict_proxy_name = metadata\\n`,
        "m",
      ),
    );
    expect(c).toMatch(
      new RegExp(
        `^last_login \\{\\n  dict proxy \\{\\n    dict_proxy_socket_path = ${PATHS.lastloginSocket}\\n    dict_proxy_name = lastlogin\\n`,
        "m",
      ),
    );
    expect(c).toMatch(/^push_notification lua \{\n  lua_file = \/etc\/dovecot\/push_notification\.lua\n\}$/m);
  });

  it("announces the chatmail capabilities and leaves COMPRESS out unless imapCompress", () => {
    expect(conf13()).toMatch(/^imap_capability \{\n  XDELTAPUSH = yes\n  XCHATMAIL = yes\n/m);
    expect(conf13()).toContain('"COMPRESS=DEFLATE" = no');
    expect(conf13()).toContain("imap_hibernate_timeout = 30s");
    const c = conf13({ imap_compress: "true", imap_rawlog: "true" });
    expect(c).not.toContain("COMPRESS=DEFLATE");
    expect(c).not.toContain("imap_hibernate_timeout");
    expect(c).toContain("executable = script-login -d rawlog");
  });

  it("serves TLS 1.3 only, and imaps from the 443 multiplexer on loopback with PROXY headers", () => {
    const c = conf13();
    expect(c).toMatch(/^ssl_server_cert_file = \/var\/lib\/acme\/live\/chat\.example\.org\/fullchain$/m);
    expect(c).toMatch(/^ssl_min_protocol = TLSv1\.3$/m);
    expect(c).toMatch(
      /inet_listener imaps_443 \{\s+listen = 127\.0\.0\.1\s+port = 8993\s+ssl = yes\s+haproxy = yes\s+\}/,
    );
  });

  it("serves metrics only with mtailAddress, grouped as on Dovecot 2.3", () => {
    expect(conf13()).not.toContain("service stats");
    const c = conf13({ mtail_address: "10.0.0.5" });
    expect(c).toMatch(/listen = 10\.0\.0\.5\n\s*port = 3904/);
    expect(c).toMatch(/group_by cmd_name \{\n  \}\n  group_by tagged_reply_state \{/);
  });
});
