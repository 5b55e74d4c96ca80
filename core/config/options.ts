// The relay's options table: every setting is declared here once, with its type, default, description and
// check. Pulumi.yaml's `config:` block is generated from this table (tools/gen-pulumi-yaml.ts) and a test proves
// the two agree; chatmail.ini keys are derived from these names by iniKey() in ini.ts.
import { ipv4NotPublic, ipv6NotPublic } from "../ip";
import { dkimKeyProblem } from "./dkim";
import { boolean, choice, ConfigError, decimal, integer, list, string, type Option } from "./option";

const FQDN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SIZE = /^\d{1,9} ?[MG]?B?$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const IPV6 = /^[0-9a-f:]+$/i;
/** A local part as relays hand them out and operators write them: dot-separated words, no quoting. */
const LOCAL_PART = /^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*$/;
/**
 * URL characters (RFC 3986) minus those that mean something in the files URLs land in: no quotes, `$`,
 * backslash, braces, angle brackets or whitespace.
 */
const URL_TEXT = /^[A-Za-z0-9._~:/?#[\]@!&()*+,;=%-]+$/;
/** One path segment: the characters of Debian's own paths; no `%` (a systemd specifier), `:` or quotes. */
const PATH_SEGMENT = /^[A-Za-z0-9_.+-]+$/;
/** Where the mailboxes may never go: the system's own directories (the service makes them vmail's). */
const SYSTEM_DIRS = [
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/lib",
  "/lib64",
  "/proc",
  "/run",
  "/sbin",
  "/sys",
  "/usr",
];

export const LANGUAGES = ["EN", "RU"] as const;

const fqdn = (v: string) =>
  FQDN.test(v) ? undefined : "is not a fully qualified domain name in lower case (like chat.example.org)";
const optionalFqdn = (v: string) => (v === "" ? undefined : fqdn(v));
const size = (v: string) =>
  SIZE.test(v) ? undefined : "is not a size; use a number with M or G, like 500M or 2G";
const url = (v: string) => {
  const rule =
    "is not an http(s) URL of URL characters without quotes, spaces or $ (like https://example.org/x)";
  if (!/^https?:\/\/[^/]/.test(v) || !URL_TEXT.test(v)) return rule;
  try {
    new URL(v);
  } catch {
    return rule;
  }
  return undefined;
};
const optionalUrl = (v: string) => (v === "" ? undefined : url(v));
const ip = (v: string) =>
  IPV4.test(v) || (v.includes(":") && IPV6.test(v)) ? undefined : "is not an IP address";
const optionalIp = (v: string) => (v === "" ? undefined : ip(v));
const hostName = (v: string) => ip(v) === undefined || /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(v);
const optionalHost = (v: string) =>
  v === "" || hostName(v) ? undefined : "is not an IP address or host name (letters, digits, . and -)";
const optionalPublicIpv4 = (v: string) => (v === "" ? undefined : ipv4NotPublic(v));
const optionalPublicIpv6 = (v: string) => (v === "" ? undefined : ipv6NotPublic(v));
/** user@domain, strictly: a plain local part and a domain name (case is kept; mail domains ignore it). */
const isAddress = (v: string) => {
  const at = v.lastIndexOf("@");
  return at > 0 && at <= 64 && LOCAL_PART.test(v.slice(0, at)) && FQDN.test(v.slice(at + 1).toLowerCase());
};
const email = (v: string) =>
  isAddress(v)
    ? undefined
    : "is not an e-mail address; use user@domain with letters, digits and . _ + - before the @";
const optionalEmail = (v: string) => (v === "" ? undefined : email(v));
const termsUrl = (v: string) =>
  (v.startsWith("data:") && URL_TEXT.test(v)) || url(v) === undefined
    ? undefined
    : "is not an http(s) or data: URL of URL characters without quotes, spaces or $";
const pemCertificates = (v: string) =>
  v === "" || /^(\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*)+$/.test(v)
    ? undefined
    : "is not a list of PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)";
/**
 * A path on the server as it lands in unit files (ReadWritePaths=), dovecot.conf and chatmail.ini: absolute and
 * normalised, so it means what it says (`/a/../../etc` would be /etc), and of characters none of those files
 * reads specially (no whitespace, which splits ReadWritePaths=, no `%`, `:` or quotes).
 */
const serverPath = (v: string) => {
  const segments = v.split("/").slice(1);
  const normalised =
    v.startsWith("/") && segments.every((s) => PATH_SEGMENT.test(s) && s !== "." && s !== "..");
  return normalised
    ? undefined
    : "is not allowed; use a normalised absolute path (like /srv/mail) of letters, digits and . _ + -, without . or .. parts, // or a trailing /";
};
const optionalServerPath = (v: string) => (v === "" ? undefined : serverPath(v));
const mailboxesPath = (v: string) => {
  const inSystemDir = v === "/" || SYSTEM_DIRS.some((d) => v === d || v.startsWith(`${d}/`));
  if (inSystemDir) return `is a system directory; the mailboxes may not be in ${SYSTEM_DIRS.join(", ")}`;
  return serverPath(v);
};
/** FIRST-LAST, unprivileged ports: what coturn's min-port/max-port and a Hetzner firewall rule both take. */
const portRange = (v: string) => {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(v);
  const [first, last] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return m && first >= 1024 && first <= last && last <= 65535
    ? undefined
    : "is not allowed; use a port range FIRST-LAST with 1024 <= FIRST <= LAST <= 65535 (like 49152-65535)";
};
const sha256 = (v: string) => (/^[0-9a-f]{64}$/.test(v) ? undefined : "is not a sha256 in lower-case hex");
const addressOrDomain = (v: string) =>
  isAddress(v) || (v.startsWith("@") && FQDN.test(v.slice(1).toLowerCase()))
    ? undefined
    : "is not an address (user@domain) or a domain entry (@domain)";
/** A name the cloud or the server defines (a Hetzner server type or location, a Unix user). */
const name = (v: string) =>
  /^[a-z0-9_][a-z0-9_-]{0,31}$/.test(v) ? undefined : "is not a name of lower-case letters, digits, _ and -";
/** An OpenSSH public key line: type, base64 key, an optional comment. */
const sshKeyLine = (v: string) =>
  v === "" || /^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,3}( [\x21-\x7e][\x20-\x7e]*)?$/.test(v)
    ? undefined
    : "is not an OpenSSH public key line (like ssh-ed25519 AAAA... comment)";
const cloudflareId = (v: string) =>
  v === "" || /^[0-9a-f]{32}$/.test(v) ? undefined : "is not a Cloudflare zone id (32 lower-case hex digits)";
const inviteToken = (v: string) => {
  if (v.length < 9) return "is too short; an invite token needs at least 9 characters";
  // Tokens travel in URLs (/new?TOKEN) and QR codes, so only URL-safe characters are allowed.
  if (!/^[A-Za-z0-9._~-]+$/.test(v)) return "may only contain letters, digits and . _ ~ -";
  if (v.length > 100) return "is too long; an invite token has at most 100 characters";
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
  // Account creation limits (doveauth, /new; docs/daemons.md, 'Creation limits'). A password's hashing cost grows
  // with its length, and without a rate limit anyone can fill the disk with accounts.
  passwordMaxLength: integer({
    daemons: true,
    description:
      "Longest password for a new address in characters, not counting an invite token (doveauth, /new).",
    default: 256,
    min: 1,
    max: 1024,
  }),
  accountCreationsPerMinute: integer({
    daemons: true,
    description:
      "New accounts per minute for the whole relay, counted apart at /new (then 429) and at first login (then a temporary login failure); a minute's worth may come at once.",
    default: 120,
    min: 1,
    max: 100000,
  }),
  accountCreationsPerMinutePerClient: integer({
    daemons: true,
    description:
      "New accounts per minute from one client IP address (IPv6: its /64), at /new and at first login like accountCreationsPerMinute; a minute's worth may come at once.",
    default: 10,
    min: 1,
    max: 100000,
  }),
  passthroughSenders: list({
    daemons: true,
    description: "Local addresses allowed to send unencrypted mail (filtermail). Off by default.",
    default: [],
    item: email,
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
  turnServer: boolean({
    description:
      "Run a TURN server (Debian's coturn) on UDP and TCP 3478 for Delta Chat calls; clients get short-lived credentials through IMAP METADATA. false: no TURN server, and clients use their built-in one.",
    default: true,
  }),
  turnRelayPorts: string({
    description:
      "UDP ports (FIRST-LAST) the TURN server relays calls through, one per call participant; the Hetzner firewall opens exactly these.",
    default: "49152-65535",
    check: portRange,
  }),
  mtailAddress: string({
    description: "Address where mtail serves Prometheus metrics on port 3903. Unset: mtail is not installed.",
    check: optionalIp,
  }),
  metricsAddress: string({
    daemons: true,
    description:
      'Address where chatmaild serves Prometheus metrics at /metrics on port 9103; "" turns them off. The default, 127.0.0.1, is reachable from the server only: the metrics are never public unless you set a public address, and the Hetzner firewall keeps port 9103 closed even then (use a private network or VPN address).',
    default: "127.0.0.1",
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
    multiline: true,
  }),
  privacyPdo: string({ description: "Data protection officer shown on the privacy page.", default: "" }),
  privacySupervisor: string({ description: "Supervisory authority shown on the privacy page.", default: "" }),
  mailboxesDir: string({
    daemons: true,
    description: "Root of the maildirs. Unset: /home/vmail/mail/mailDomain (as on existing relays).",
    check: mailboxesPath,
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
    check: optionalServerPath,
  }),
  tlsKeyPath: string({
    description: "With tlsMode external: path of the private key on the server.",
    default: "",
    check: optionalServerPath,
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
    multiline: true,
    maxLength: 1_000_000,
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
  // Moving or restoring a relay (docs/relay.md, 'Mail off' and 'OpenDKIM'): a new server configured with mail off,
  // its accounts copied onto it, then mail on; the old server's DKIM key kept.
  acceptMail: boolean({
    description:
      "Whether the relay accepts mail and serves IMAP. false: Postfix and Dovecot are stopped and disabled while everything else is deployed, to configure a new server completely before its accounts and mailboxes are copied onto it, or to stop the old server accepting mail before a move. true again enables and starts them.",
    default: true,
  }),
  dkimPrivateKey: string({
    description:
      "The relay's DKIM private key (RSA in PEM, at least 1024 bits; pulumi config set --secret dkimPrivateKey < KEY), written to /etc/dkimkeys/opendkim.private; the DKIM record is made from it. Set it so that a replaced or restored server keeps the relay's DKIM identity. Unset: a key is made on the server once and kept, also when this option is removed again.",
    secret: true,
    multiline: true,
    maxLength: 16_000,
    check: dkimKeyProblem,
  }),

  // --- deployment: read by the Pulumi program only ---
  serverOs: choice({
    description:
      "Operating system of the server: debian-12 (Dovecot 2.3) or debian-13 (Dovecot 2.4, configured in its own format); the deploy refuses any other.",
    default: "debian-12",
    values: ["debian-12", "debian-13"] as const,
    deployOnly: true,
  }),
  wwwFolder: string({
    description: "Folder with your own web page sources. Unset: the pages in www/ of this project.",
    default: "",
    deployOnly: true,
  }),
  appVersionsFile: string({
    description:
      "JSON file (on this machine) of the latest Delta Chat app versions, which clients read as /shared/vendor/deltachat/appversions. Unset: clients are told of none.",
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
    check: optionalHost,
    deployOnly: true,
  }),
  hostIpv4: string({
    description:
      "With hostProvider existing: the server's public IPv4 address, for the A record. Unset: hostAddress when it is an IPv4 address, else read from the server at pulumi up. Set it when the server is behind NAT.",
    default: "",
    check: optionalPublicIpv4,
    deployOnly: true,
  }),
  hostIpv6: string({
    description:
      "With hostProvider existing: the server's public IPv6 address, for the AAAA record. Unset: hostAddress when it is an IPv6 address, else read from the server at pulumi up (unless disableIpv6).",
    default: "",
    check: optionalPublicIpv6,
    deployOnly: true,
  }),
  hostGeneration: integer({
    description:
      "With hostProvider existing: raise it by one when the server at hostAddress was reinstalled or replaced at the same address, so that pulumi up configures it from scratch (every step runs again and the DKIM key and ACME account are read back). 0: the server pulumi up configured before.",
    default: 0,
    min: 0,
    max: 1_000_000,
    deployOnly: true,
  }),
  sshUser: string({
    description: "SSH user on the server (needs root rights).",
    default: "root",
    check: name,
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
    check: sshKeyLine,
    maxLength: 16_000,
    deployOnly: true,
  }),
  sshPrivateKey: string({
    description: "Private key the program uses to log in over SSH (a secret).",
    required: true,
    secret: true,
    deployOnly: true,
    multiline: true,
    maxLength: 100_000,
  }),
  sshHostKey: string({
    description: "The server's SSH host public key; when set, the connection verifies it.",
    default: "",
    check: sshKeyLine,
    maxLength: 16_000,
    deployOnly: true,
  }),
  hetznerServerType: string({
    description: "Hetzner server type.",
    default: "cx23",
    check: name,
    deployOnly: true,
  }),
  hetznerLocation: string({
    description: "Hetzner location.",
    default: "fsn1",
    check: name,
    deployOnly: true,
  }),
  hetznerAllowReplace: boolean({
    description:
      "Let a change of image or user data replace the server (a new server, a new DKIM key unless dkimPrivateKey is set, empty mailboxes). Off: such changes are ignored.",
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
    check: cloudflareId,
    deployOnly: true,
  }),
  cloudflareZoneName: string({
    description: "Cloudflare zone name; unset: the parent domain of mailDomain.",
    default: "",
    check: optionalFqdn,
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
  readonly dkimPrivateKey: string | undefined;
};

export { ConfigError };
