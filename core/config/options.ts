// The relay's options table: every setting is declared here once, with its type, default, description and
// check. Pulumi.yaml's `config:` block is generated from this table (tools/gen-pulumi-yaml.ts) and a test proves
// the two agree; chatmail.ini keys are derived from these names by iniKey() in ini.ts.
import { boolean, choice, ConfigError, decimal, integer, list, string, type Option } from "./option";

const FQDN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SIZE = /^\d+\s*[MG]?B?$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9a-f:]+$/i;

export const LANGUAGES = ["EN", "RU"] as const;

const fqdn = (v: string) =>
  FQDN.test(v) ? undefined : "is not a fully qualified domain name in lower case (like chat.example.org)";
const size = (v: string) =>
  SIZE.test(v) ? undefined : "is not a size; use a number with M or G, like 500M or 2G";
const url = (v: string) => (/^https?:\/\/[^\s]+$/.test(v) ? undefined : "is not an http(s) URL");
const optionalUrl = (v: string) => (v === "" ? undefined : url(v));
const ip = (v: string) =>
  IPV4.test(v) || (v.includes(":") && IPV6.test(v)) ? undefined : "is not an IP address";
const optionalIp = (v: string) => (v === "" ? undefined : ip(v));
const email = (v: string) => (/^[^\s@]+@[^\s@]+$/.test(v) ? undefined : "is not an e-mail address");
const optionalEmail = (v: string) => (v === "" ? undefined : email(v));
const termsUrl = (v: string) =>
  /^(https?|data):[^\s"]+$/.test(v) ? undefined : "is not an http(s) or data: URL without spaces or quotes";
const pemCertificates = (v: string) =>
  v === "" || /^(\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/.test(v)
    ? undefined
    : "is not a list of PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)";
const absolutePath = (v: string) => (v === "" || v.startsWith("/") ? undefined : "is not an absolute path");
const sha256 = (v: string) => (/^[0-9a-f]{64}$/.test(v) ? undefined : "is not a sha256 in lower-case hex");
const addressOrDomain = (v: string) =>
  /^[^\s@]*@[a-z0-9.-]+$/i.test(v)
    ? undefined
    : "is not an address (user@domain) or a domain entry (@domain)";
const inviteToken = (v: string) => {
  if (v.length < 9) return "is too short; an invite token needs at least 9 characters";
  // Tokens travel in URLs (/new?TOKEN) and QR codes, so only URL-safe characters are allowed.
  if (!/^[A-Za-z0-9._~-]+$/.test(v)) return "may only contain letters, digits and . _ ~ -";
  return undefined;
};
const language = (v: string) =>
  v === "ALL" || (LANGUAGES as readonly string[]).includes(v)
    ? undefined
    : `is not available; use ${LANGUAGES.join(", ")} or ALL`;
const port = (description: string, def: number) =>
  integer({ description, default: def, min: 1024, max: 65535, daemons: true });
const days = (description: string, def: number) =>
  integer({ description, default: def, min: 1, daemons: true });

export const OPTIONS = {
  // --- the relay (also written to chatmail.ini, which the daemons read) ---
  mailDomain: string({
    required: true,
    daemons: true,
    description:
      "The relay's domain: addresses are user@mailDomain; used as host name, TLS name and DNS zone entries.",
    check: fqdn,
  }),
  maxUserSendPerMinute: integer({
    daemons: true,
    description: "Messages one address may send per minute (filtermail rate limit, answered with 450).",
    default: 60,
    min: 1,
  }),
  maxUserSendBurstSize: integer({
    daemons: true,
    description: "Messages one address may send at once before the per-minute rate applies (filtermail).",
    default: 10,
    min: 1,
  }),
  maxMailboxSize: string({
    daemons: true,
    description: "Storage quota per address, like 500M or 2G (dovecot quota_rule; expiry trims to it).",
    default: "500M",
    check: size,
  }),
  maxMessageSize: integer({
    daemons: true,
    description: "Largest message in bytes (postfix message_size_limit, dovecot, filtermail).",
    default: 31457280,
    min: 1024,
  }),
  deleteMailsAfter: days("Days after which every message is deleted (expiry job).", 20),
  deleteLargeAfter: days("Days after which messages over 200 kB are deleted (expiry job).", 7),
  deleteInactiveUsersAfter: days("Days without login after which an address is deleted (expiry job).", 90),
  usernameMinLength: integer({
    daemons: true,
    description: "Shortest local part of a new address (doveauth, /new).",
    default: 9,
    min: 1,
    max: 64,
  }),
  usernameMaxLength: integer({
    daemons: true,
    description: "Longest local part of a new address (doveauth, /new).",
    default: 9,
    min: 1,
    max: 64,
  }),
  passwordMinLength: integer({
    daemons: true,
    description: "Shortest password for a new address, not counting an invite token (doveauth, /new).",
    default: 9,
    min: 1,
    max: 256,
  }),
  passthroughSenders: list({
    daemons: true,
    description: "Local addresses allowed to send unencrypted mail (filtermail). Off by default.",
    default: [],
    item: (v) => (/^[^\s@]+@[a-z0-9.-]+$/i.test(v) ? undefined : "is not an address (user@domain)"),
  }),
  passthroughRecipients: list({
    daemons: true,
    description: "Recipients that may receive unencrypted mail; @domain matches a whole domain (filtermail).",
    default: [],
    item: addressOrDomain,
  }),
  filtermailSmtpPort: port(
    "Loopback port of the outgoing encryption filter (postfix master.cf, filtermail).",
    10080,
  ),
  filtermailSmtpPortIncoming: port(
    "Loopback port of the incoming encryption filter (postfix master.cf, filtermail).",
    10081,
  ),
  postfixReinjectPort: port("Loopback port where filtered outgoing mail re-enters postfix.", 10025),
  postfixReinjectPortIncoming: port("Loopback port where filtered incoming mail re-enters postfix.", 10026),
  newAccountPort: port("Loopback port of the new-account service behind nginx's /new.", 10090),
  disableIpv6: boolean({
    description: "Run IPv4 only: postfix, dovecot, nginx and unbound do not listen on IPv6; no AAAA record.",
    default: false,
  }),
  irohRelay: string({
    daemons: true,
    description:
      "URL of an external iroh relay to advertise. Unset: the relay runs its own iroh-relay at https://mailDomain.",
    check: optionalUrl,
  }),
  mtailAddress: string({
    description: "Address where mtail serves Prometheus metrics on port 3903. Unset: mtail is not installed.",
    check: optionalIp,
  }),
  imapRawlog: boolean({
    description: "Write per-user IMAP protocol logs into the maildir (debugging).",
    default: false,
  }),
  imapCompress: boolean({ description: "Offer IMAP COMPRESS (disables IMAP hibernation).", default: false }),
  privacyMail: string({
    description: "Privacy contact e-mail shown on the privacy page.",
    default: "",
    check: optionalEmail,
  }),
  privacyPostal: string({
    description: "Postal address of the controller shown on the privacy page.",
    default: "",
  }),
  privacyPdo: string({ description: "Data protection officer shown on the privacy page.", default: "" }),
  privacySupervisor: string({ description: "Supervisory authority shown on the privacy page.", default: "" }),
  mailboxesDir: string({
    daemons: true,
    description: "Root of the maildirs. Unset: /home/vmail/mail/mailDomain (as on existing relays).",
    check: absolutePath,
  }),
  inviteTokens: list({
    daemons: true,
    description:
      "Invite tokens: when set, new addresses are created only with a password that starts with a token.",
    default: [],
    item: inviteToken,
    secret: true,
  }),
  languages: list({
    description: "Languages of the web pages in tab order (EN, RU) or ALL.",
    default: ["EN"],
    item: language,
    normalise: (v) => v.toUpperCase(),
  }),
  isDevelopmentInstance: boolean({
    description: "Show a 'temporary development service' notice on the home page.",
    default: false,
  }),
  maxLoad1m: decimal({
    daemons: true,
    description: "Refuse new addresses while the 1-minute load is above this.",
    default: 5,
    min: 0,
  }),
  minAvailableMemory: string({
    daemons: true,
    description: "Refuse new addresses while available memory is below this (like 200M).",
    default: "200M",
    check: size,
  }),
  minFreeDiskSpace: string({
    daemons: true,
    description: "Refuse new addresses while free disk space is below this (like 1G).",
    default: "1G",
    check: size,
  }),
  maxImapConnections: integer({ description: "Dovecot imap process_limit.", default: 10000, min: 1 }),
  maxSmtpConnections: integer({
    description: "Postfix submission/smtps maxproc; one client may use a fifth of it.",
    default: 1000,
    min: 5,
  }),
  notificationUrl: string({
    daemons: true,
    description: "Push notification server that device tokens are posted to (chatmail-metadata).",
    default: "https://notifications.delta.chat/notify",
    check: url,
  }),
  tlsMode: choice({
    daemons: true,
    description:
      "Where TLS certificates come from: acme (Let's Encrypt or acmeDirectoryUrl), self-signed, or external files.",
    default: "acme",
    values: ["acme", "self-signed", "external"] as const,
  }),
  tlsCertPath: string({
    description: "With tlsMode external: path of the certificate chain on the server.",
    default: "",
    check: absolutePath,
  }),
  tlsKeyPath: string({
    description: "With tlsMode external: path of the private key on the server.",
    default: "",
    check: absolutePath,
  }),
  acmeEmail: string({
    description: "E-mail address of the ACME account.",
    default: "",
    check: optionalEmail,
  }),
  acmeDirectoryUrl: string({
    description: "ACME directory URL (Let's Encrypt by default; a test CA in the testbed).",
    default: "https://acme-v02.api.letsencrypt.org/directory",
    check: url,
  }),
  acmeTermsOfServiceUrl: string({
    description:
      "Terms of service the relay agrees to at its ACME CA, exactly as the CA's directory names them (meta.termsOfService); acmetool asks about this URL.",
    default: "https://letsencrypt.org/documents/LE-SA-v1.8-July-06-2026.pdf",
    check: termsUrl,
  }),
  trustedCaCertificates: string({
    description:
      "CA certificates (PEM) the server trusts in addition to Debian's bundle: for outgoing SMTP TLS, MTA-STS and acmetool's connection to the CA. For a private CA or a test network; empty on the public Internet.",
    default: "",
    check: pemCertificates,
  }),
  resolverForwarders: list({
    description: "DNS servers unbound forwards all queries to. Empty: unbound resolves from the root.",
    default: [],
    item: ip,
  }),
  resolverDnssec: boolean({
    description:
      "unbound and OpenDKIM validate DNSSEC. Turn off only when resolverForwarders point at a private DNS server with unsigned zones (a test network), where validation fails for every name.",
    default: true,
  }),

  // --- deployment: read by the Pulumi program only ---
  serverOs: choice({
    description: "Operating system of the server; the deploy refuses any other.",
    default: "debian-12",
    values: ["debian-12", "debian-13"] as const,
    deployOnly: true,
  }),
  wwwFolder: string({
    description: "Folder with your own web page sources. Unset: the pages in www/ of this project.",
    default: "",
    deployOnly: true,
  }),
  irohRelayDownloadUrl: string({
    description: "Release archive of iroh-relay to install (a mirror may be used).",
    default:
      "https://github.com/n0-computer/iroh/releases/download/v0.35.0/iroh-relay-v0.35.0-x86_64-unknown-linux-musl.tar.gz",
    check: url,
    deployOnly: true,
  }),
  irohRelaySha256: string({
    description: "sha256 of the iroh-relay binary inside the archive; the deploy fails on a mismatch.",
    default: "45c81199dbd70f8c4c30fef7f3b9727ca6e3cea8f2831333eeaf8aa71bf0fac1",
    check: sha256,
    deployOnly: true,
  }),
  hostProvider: choice({
    description:
      "hetzner: the program creates the server; existing: a server you already have (hostAddress).",
    default: "hetzner",
    values: ["hetzner", "existing"] as const,
    deployOnly: true,
  }),
  hostAddress: string({
    description: "With hostProvider existing: IP address or name of the server to configure over SSH.",
    default: "",
    deployOnly: true,
  }),
  sshUser: string({
    description: "SSH user on the server (needs root rights).",
    default: "root",
    deployOnly: true,
  }),
  sshPort: integer({
    description: "SSH port of the server.",
    default: 22,
    min: 1,
    max: 65535,
    deployOnly: true,
  }),
  sshPublicKey: string({
    description: "With hostProvider hetzner: the public key installed for root on the new server.",
    default: "",
    deployOnly: true,
  }),
  sshPrivateKey: string({
    description: "Private key the program uses to log in over SSH (a secret).",
    required: true,
    secret: true,
    deployOnly: true,
  }),
  sshHostKey: string({
    description: "The server's SSH host public key; when set, the connection verifies it.",
    default: "",
    deployOnly: true,
  }),
  hetznerServerType: string({ description: "Hetzner server type.", default: "cx23", deployOnly: true }),
  hetznerLocation: string({ description: "Hetzner location.", default: "fsn1", deployOnly: true }),
  hetznerAllowReplace: boolean({
    description:
      "Let a change of image or user data replace the server (a new server, new DKIM key, empty mailboxes). Off: such changes are ignored.",
    default: false,
    deployOnly: true,
  }),
  dnsProvider: choice({
    description:
      "cloudflare: the program manages every DNS record; none: publish the zoneFile output yourself.",
    default: "cloudflare",
    values: ["cloudflare", "none"] as const,
    deployOnly: true,
  }),
  cloudflareZoneId: string({
    description: "Cloudflare zone id; unset: the zone is looked up by cloudflareZoneName.",
    default: "",
    deployOnly: true,
  }),
  cloudflareZoneName: string({
    description: "Cloudflare zone name; unset: the parent domain of mailDomain.",
    default: "",
    deployOnly: true,
  }),
} as const;

export type OptionName = keyof typeof OPTIONS;
type ValueOf<O> = O extends Option<infer T> ? T : never;

/** The relay's typed, validated configuration. Optional options without a default are `undefined` when unset. */
export type RelayConfig = { readonly [K in OptionName]: ValueOf<(typeof OPTIONS)[K]> } & {
  readonly irohRelay: string | undefined;
  readonly mtailAddress: string | undefined;
  readonly mailboxesDir: string;
  readonly sshPrivateKey: string | undefined;
};

export { ConfigError };
