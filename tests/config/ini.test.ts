import { describe, expect, it } from "vitest";
import {
  ConfigError,
  iniKey,
  OPTION_NAMES,
  OPTIONS,
  parseChatmailIni,
  renderChatmailIni,
} from "../../core/config";

// A chatmail.ini as `cmdeploy init` writes it (1.7.0), with an operator's edits.
const CMDEPLOY_INI = `[params]
# the domain
mail_domain = chat.example.org
max_user_send_per_minute = 80
max_mailbox_size = 100M
max_message_size = 31457280
delete_mails_after = 20
delete_large_after = 7
delete_inactive_users_after = 90
username_min_length = 9
username_max_length = 9
password_min_length = 9
passthrough_senders =
passthrough_recipients = echo@chat.example.org
filtermail_smtp_port = 10080
postfix_reinject_port = 10025
filtermail_smtp_port_incoming = 10081
postfix_reinject_port_incoming = 10026
disable_ipv6 = False
imap_rawlog = false
privacy_postal =
    Example Org e.V.
    Example Street 1
privacy_mail = privacy@example.org
privacy_pdo =
privacy_supervisor =
languages = EN RU
invite_token = s3cr3tTok3n privil3g3d
passdb_path = /home/vmail/passdb.sqlite
filtermail_http_port_incoming = 10082
`;

describe("parseChatmailIni", () => {
  it("reads a cmdeploy chatmail.ini into the same typed config", () => {
    const { config } = parseChatmailIni(CMDEPLOY_INI);
    expect(config.mailDomain).toBe("chat.example.org");
    expect(config.maxUserSendPerMinute).toBe(80);
    expect(config.maxMailboxSize).toBe("100M");
    expect(config.passthroughRecipients).toEqual(["echo@chat.example.org"]);
    expect(config.passthroughSenders).toEqual([]);
    expect(config.disableIpv6).toBe(false);
    expect(config.privacyPostal).toBe("Example Org e.V.\nExample Street 1");
    expect(config.languages).toEqual(["EN", "RU"]);
    expect(config.inviteTokens).toEqual(["s3cr3tTok3n", "privil3g3d"]);
    expect(config.mailboxesDir).toBe("/home/vmail/mail/chat.example.org");
  });

  it("reports keys that set nothing here instead of dropping them silently", () => {
    expect(parseChatmailIni(CMDEPLOY_INI).unknownKeys).toEqual([
      "filtermail_http_port_incoming",
      "passdb_path",
    ]);
  });

  it("maps cmdeploy's tls_external_cert_and_key to tlsMode external", () => {
    const { config } = parseChatmailIni(
      "[params]\nmail_domain = chat.example.org\ntls_external_cert_and_key = /etc/c.pem /etc/k.pem\n",
    );
    expect([config.tlsMode, config.tlsCertPath, config.tlsKeyPath]).toEqual([
      "external",
      "/etc/c.pem",
      "/etc/k.pem",
    ]);
  });

  it("rejects a file without [params]", () => {
    expect(() => parseChatmailIni("mail_domain = x.example.org\n")).toThrow(/no \[params\] section/);
  });

  it("accepts and strips a UTF-8 byte order mark (Windows editors write one)", () => {
    const { config } = parseChatmailIni("\uFEFF[params]\nmail_domain = chat.example.org\n");
    expect(config.mailDomain).toBe("chat.example.org");
  });

  it("rejects a key set twice, naming the key and both lines", () => {
    const text =
      "[params]\nmail_domain = chat.example.org\nmax_mailbox_size = 1G\n# note\nmax_mailbox_size = 2G\n";
    expect(() => parseChatmailIni(text)).toThrow(ConfigError);
    expect(() => parseChatmailIni(text)).toThrow(
      "chatmail.ini: max_mailbox_size is set twice, on lines 3 and 5; keep one of them",
    );
  });

  it("does not mistake continuation lines for keys", () => {
    const text = "[params]\nmail_domain = chat.example.org\nprivacy_postal =\n    a = b\n    a = b\n";
    expect(parseChatmailIni(text).config.privacyPostal).toBe("a = b\na = b");
  });

  it("rejects bad values naming the ini option's config name", () => {
    expect(() =>
      parseChatmailIni("[params]\nmail_domain = chat.example.org\nmax_mailbox_size = 5X\n"),
    ).toThrow(ConfigError);
    expect(() =>
      parseChatmailIni("[params]\nmail_domain = chat.example.org\nmax_mailbox_size = 5X\n"),
    ).toThrow(/maxMailboxSize: "5X"/);
  });
});

describe("renderChatmailIni", () => {
  it("round-trips: the daemons read back exactly the values the plan was made from", () => {
    const { config } = parseChatmailIni(CMDEPLOY_INI);
    const again = parseChatmailIni(renderChatmailIni(config));
    expect(again.unknownKeys).toEqual([]);
    for (const name of OPTION_NAMES.filter((n) => OPTIONS[n].daemons)) {
      expect(again.config[name], name).toEqual(config[name]);
    }
  });

  it("holds only what the daemons read, so other options do not restart them", () => {
    const text = renderChatmailIni(parseChatmailIni(CMDEPLOY_INI).config);
    expect(text).toContain("max_user_send_per_minute = 80");
    expect(text).not.toContain("privacy_postal");
    expect(text).not.toContain("languages");
  });

  it("writes no deploy-only option (no SSH key, no cloud settings)", () => {
    const text = renderChatmailIni(parseChatmailIni(CMDEPLOY_INI).config);
    for (const key of ["ssh_private_key", "host_provider", "hetzner_server_type", "dns_provider"]) {
      expect(text).not.toContain(key);
    }
  });
});

describe("iniKey", () => {
  it("spells option names as existing relays do", () => {
    expect(iniKey("maxUserSendPerMinute")).toBe("max_user_send_per_minute");
    expect(iniKey("disableIpv6")).toBe("disable_ipv6");
    expect(iniKey("maxLoad1m")).toBe("max_load_1m");
    expect(iniKey("inviteTokens")).toBe("invite_token");
  });
});
