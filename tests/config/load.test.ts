import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, OPTIONS, type RelayConfig } from "../../core/config";

const base = { mailDomain: "chat.example.org" };
const load = (raw: Record<string, string | number | boolean | string[]>) => loadConfig({ ...base, ...raw });
const errorOf = (raw: Record<string, string | number | boolean | string[]>): string => {
  try {
    load(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("loadConfig", () => {
  it("applies every default of the options table", () => {
    const config = load({});
    for (const [name, option] of Object.entries(OPTIONS)) {
      if (option.default !== undefined)
        expect(config[name as keyof RelayConfig], name).toEqual(option.default);
    }
    expect(config.mailboxesDir).toBe("/home/vmail/mail/chat.example.org");
    expect(config.irohRelay).toBeUndefined();
  });

  it("requires mailDomain and says what to set", () => {
    expect(() => loadConfig({})).toThrow(/mailDomain: required/);
  });

  it.each([
    ["mailDomain", "chat.example.org", "chat.example.org"],
    ["mailDomain", "a-b.c.example", "a-b.c.example"],
    ["maxUserSendPerMinute", "120", 120],
    ["maxUserSendPerMinute", 5, 5],
    ["maxMailboxSize", "2G", "2G"],
    ["maxMailboxSize", "100MB", "100MB"],
    ["maxMessageSize", "1048576", 1048576],
    ["disableIpv6", "True", true],
    ["disableIpv6", false, false],
    ["languages", "en ru", ["EN", "RU"]],
    ["languages", '["ru","en"]', ["RU", "EN"]],
    ["languages", "all", ["ALL"]],
    ["inviteTokens", "s3cr3tToken another-1", ["s3cr3tToken", "another-1"]],
    ["inviteTokens", ["abcdefghijk"], ["abcdefghijk"]],
    [
      "passthroughRecipients",
      "@example.com echo@chat.example.org",
      ["@example.com", "echo@chat.example.org"],
    ],
    ["irohRelay", "https://iroh.example.net", "https://iroh.example.net"],
    ["tlsMode", "self-signed", "self-signed"],
    ["maxLoad1m", "2.5", 2.5],
    ["resolverForwarders", "10.0.0.53", ["10.0.0.53"]],
  ])("accepts %s = %j", (name, raw, expected) => {
    expect(load({ [name]: raw })[name as keyof RelayConfig]).toEqual(expected);
  });

  it.each([
    ["mailDomain", "localhost", /mailDomain: "localhost" is not a fully qualified domain name/],
    ["mailDomain", "Chat.Example.org", /mailDomain: .* in lower case/],
    ["mailDomain", "chat..example.org", /mailDomain: .*not a fully qualified/],
    [
      "maxUserSendPerMinute",
      "0",
      /maxUserSendPerMinute: "0" is not allowed; use a whole number from 1 to 9007199254740991/,
    ],
    ["maxUserSendPerMinute", "-5", /maxUserSendPerMinute: "-5" is not allowed; use a whole number from 1/],
    ["maxUserSendPerMinute", "ten", /maxUserSendPerMinute: "ten" is not allowed; use a whole number from 1/],
    ["deleteMailsAfter", "0", /deleteMailsAfter: "0" is not allowed; use a whole number from 1/],
    ["maxMailboxSize", "500X", /maxMailboxSize: "500X" is not a size; use a number with M or G/],
    ["maxMailboxSize", "500K", /maxMailboxSize: "500K" is not a size/],
    ["maxMessageSize", "3.5", /maxMessageSize: "3.5" is not allowed; use a whole number from 1024/],
    ["disableIpv6", "yes", /disableIpv6: "yes" is not allowed; use true or false/],
    ["languages", "DE", /languages\[0\]: "DE" is not available; use EN, RU or ALL/],
    ["languages", "ALL EN", /languages: ALL already lists every language/],
    [
      "tlsMode",
      "letsencrypt",
      /tlsMode: "letsencrypt" is not allowed; use one of acme, self-signed, external/,
    ],
    ["tlsMode", "external", /tlsMode: external needs both tlsCertPath and tlsKeyPath/],
    [
      "filtermailSmtpPort",
      "80",
      /filtermailSmtpPort: "80" is not allowed; use a whole number from 1024 to 65535/,
    ],
    ["filtermailSmtpPort", "10025", /ports: the loopback ports must differ/],
    ["irohRelay", "iroh.example.net", /irohRelay: "iroh.example.net" is not an http\(s\) URL/],
    // Values that would break the files they land in (each file's own tests show where).
    [
      "mailboxesDir",
      "/srv/mail\nmail_plugins = evil",
      /mailboxesDir: .* contains a control character or line break/,
    ],
    [
      "mailboxesDir",
      "/srv/my mail",
      /mailboxesDir: "\/srv\/my mail" is not allowed; use a normalised absolute path/,
    ],
    ["mailboxesDir", "/home/vmail/../../etc", /mailboxesDir: .* without \. or \.\. parts/],
    ["mailboxesDir", "/etc/mail", /mailboxesDir: "\/etc\/mail" is a system directory/],
    ["mailboxesDir", "/srv/%h", /mailboxesDir: .*normalised absolute path/],
    ["mailboxesDir", "srv/mail", /mailboxesDir: .*normalised absolute path/],
    ["tlsCertPath", "/etc/ssl/my cert.pem", /tlsCertPath: .*normalised absolute path/],
    ["acmeEmail", 'ops"@example.org', /acmeEmail: .* is not an e-mail address; use user@domain/],
    ["acmeEmail", "ops@example.org\nx: y", /acmeEmail: .* contains a control character or line break/],
    ["privacyMail", "a b@example.org", /privacyMail: .* is not an e-mail address/],
    ["passthroughRecipients", ['"x"@example.org'], /passthroughRecipients\[0\]: .* is not an address/],
    [
      "notificationUrl",
      'https://x.example/"a',
      /notificationUrl: .* is not an http\(s\) URL .*without quotes/,
    ],
    ["acmeDirectoryUrl", "https://ca.example/dir\u0000", /acmeDirectoryUrl: .* contains a control character/],
    [
      "acmeTermsOfServiceUrl",
      "https://x.example/a b",
      /acmeTermsOfServiceUrl: .* is not an http\(s\) or data: URL/,
    ],
    ["privacyPdo", "Jane\nDoe", /privacyPdo: .* contains a control character or line break/],
    ["privacyPostal", "Street 1\u0000", /privacyPostal: .* contains a control character; use printable text/],
    ["maxMailboxSize", "500\nM", /maxMailboxSize: .* contains a control character or line break/],
    ["sshUser", "root -oProxyCommand=x", /sshUser: .* is not a name/],
    ["hostAddress", "host;rm", /hostAddress: .* is not an IP address or host name/],
    ["hetznerLocation", "fsn1 x", /hetznerLocation: "fsn1 x" is not a name/],
    ["sshPublicKey", "ssh-ed25519 AAAA\nssh-rsa BBBB", /sshPublicKey: .* contains a control character/],
    ["cloudflareZoneName", "example.org/x", /cloudflareZoneName: .* is not a fully qualified domain name/],
    [
      "privacyPdo",
      "x".repeat(5000),
      /privacyPdo: "x{50,}\.\.\." \(5000 characters\) is too long; use at most 1000/,
    ],
    ["mtailAddress", "somewhere", /mtailAddress: "somewhere" is not an IP address/],
    ["privacyMail", "not-an-address", /privacyMail: "not-an-address" is not an e-mail address/],
    [
      "passthroughSenders",
      "bob@other.org",
      /passthroughSenders: every entry must be an address at chat.example.org/,
    ],
    ["irohRelaySha256", "abc", /irohRelaySha256: "abc" is not a sha256/],
    ["serverOs", "ubuntu-24.04", /serverOs: "ubuntu-24.04" is not allowed; use one of debian-12, debian-13/],
  ])("rejects %s = %j", (name, raw, message) => {
    expect(errorOf({ [name]: raw })).toMatch(message);
  });

  it("rejects usernameMinLength above usernameMaxLength", () => {
    expect(errorOf({ usernameMinLength: 12, usernameMaxLength: 10 })).toMatch(
      /usernameMinLength: 12 is above usernameMaxLength 10/,
    );
  });

  it("rejects an invite token shorter than 9 characters without echoing it", () => {
    const message = errorOf({ inviteTokens: "okokokokok shorty" });
    expect(message).toMatch(
      /inviteTokens\[1\]: the value is too short; an invite token needs at least 9 characters/,
    );
    expect(message).not.toContain("shorty");
  });

  it("rejects an invite token with whitespace or URL-unsafe characters", () => {
    expect(errorOf({ inviteTokens: ["has space inside"] })).toMatch(
      /inviteTokens\[0\]: the value may only contain/,
    );
    expect(errorOf({ inviteTokens: ["tab\tinside123"] })).toMatch(/inviteTokens\[0\]/);
    expect(errorOf({ inviteTokens: ["question?mark1"] })).toMatch(/inviteTokens\[0\]/);
  });

  it.each([
    ["18 digits (rounded by a JS number)", "123456789012345678"],
    ["a YAML number too large for an exact JS number", 1e23],
    ["above Number.MAX_SAFE_INTEGER", "9007199254740993"],
  ])("refuses a whole number that cannot be held exactly: %s", (_, raw) => {
    expect(errorOf({ deleteMailsAfter: raw })).toMatch(
      /deleteMailsAfter: .* is not allowed; use a whole number from 1 to 9007199254740991$/m,
    );
  });

  it("accepts the largest exact whole number", () => {
    expect(load({ deleteMailsAfter: "9007199254740991" }).deleteMailsAfter).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("never echoes a secret in an error, also not a bad private key", () => {
    const message = errorOf({ sshPrivateKey: "-----BEGIN KEY-----\u0000secretbits" });
    expect(message).toMatch(/sshPrivateKey: the value contains a control character/);
    expect(message).not.toContain("secretbits");
  });

  it("rejects unknown options, so a typo does not pass silently", () => {
    expect(errorOf({ maxUserSendPerMinut: 5 })).toMatch(/maxUserSendPerMinut: unknown option/);
  });

  it("reports every problem at once", () => {
    const message = errorOf({ maxMailboxSize: "1X", languages: "DE", maxUserSendPerMinute: "0" });
    expect(message.split("\n").length).toBe(4);
  });
});
