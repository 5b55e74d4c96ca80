// Facts that several server files share: paths, sockets, users, fixed ports. Templates get them through the
// render context, so a socket named in dovecot.conf and in a daemon's unit is the same string. What the daemons
// know too (their sockets, chatmail.ini, the bundle, the vmail user) comes from core/server.ts.
import { runsOwnIrohRelay, type RelayConfig } from "../config";
import {
  CHATMAIL_INI,
  CHATMAILD_JS,
  DOVEAUTH_SOCKET,
  LASTLOGIN_SOCKET,
  METADATA_SOCKET,
  METRICS_FACTS,
  METRICS_PORT,
  NOCREATE_FILE,
  VMAIL_USER,
  APPVERSIONS_FILE,
  STUN_PORT,
} from "../server";

export const USERS = {
  vmail: VMAIL_USER,
  opendkim: "opendkim",
  iroh: "iroh",
} as const;

export const PATHS = {
  /** The chatmail.ini the daemons read. */
  chatmailIni: CHATMAIL_INI,
  /** The bundled daemons (one Node program, see daemons/main.ts). */
  daemonBundle: CHATMAILD_JS,
  doveauthSocket: DOVEAUTH_SOCKET,
  metadataSocket: METADATA_SOCKET,
  lastloginSocket: LASTLOGIN_SOCKET,
  /** The services and certificate chatmaild's metrics report on (only with metricsAddress). */
  metricsFacts: METRICS_FACTS,
  webRoot: "/var/www/html",
  /** Printable invites (QR codes with tokens) live outside the web root, readable by root only. */
  invitesDir: "/root/chatmail-invites",
  dkimKeyDir: "/etc/dkimkeys",
  dkimPrivateKey: "/etc/dkimkeys/opendkim.private",
  opendkimSocketDir: "/var/spool/postfix/opendkim",
  irohRelayBinary: "/usr/local/bin/iroh-relay",
  /** The TURN server's shared secret: made on the server, readable by root only; coturn and chatmaild get a copy
   * through systemd's LoadCredential= (docs/relay.md, 'TURN'). */
  turnSecret: "/etc/chatmail/turn-secret",
  /** coturn's config without the secret (Debian's /etc/turnserver.conf stays untouched); its unit adds the secret
   * in a runtime copy. */
  turnConfig: "/etc/chatmail/turnserver.conf",
  /** The latest app versions clients are told of (appVersionsFile), read by the metadata daemon. */
  appVersions: APPVERSIONS_FILE,
  nocreateFile: NOCREATE_FILE,
  selfSignedCert: "/etc/ssl/certs/mailserver.pem",
  selfSignedKey: "/etc/ssl/private/mailserver.key",
  version: "/etc/chatmail-version",
  /** Debian's nodejs (18 on Debian 12), which runs the daemon bundle. */
  node: "/usr/bin/node",
  /** Where acmetool writes HTTP-01 challenges and its redirector serves them (Debian's acmetool sandbox allows
   * writes under /run/acme only). */
  acmeChallengeDir: "/run/acme/acme-challenge",
  /** Dovecot's LMTP and SASL sockets inside Postfix's queue directory (Postfix services run chrooted there). */
  dovecotLmtpSocket: "/var/spool/postfix/private/dovecot-lmtp",
  dovecotAuthSocket: "/var/spool/postfix/private/auth",
  /** The milter socket, as Postfix sees it relative to its chroot: opendkim/opendkim.sock. */
  opendkimSocket: "/var/spool/postfix/opendkim/opendkim.sock",
} as const;

export const PORTS = {
  smtp: 25,
  http: 80,
  imap: 143,
  https: 443,
  smtps: 465,
  submission: 587,
  imaps: 993,
  irohRelayHttp: 3340,
  stun: STUN_PORT,
  mtail: 3903,
  /** acmetool's redirector/challenge responder, behind nginx on port 80. */
  acmetool: 402,
  /** nginx's HTTPS site behind the ALPN multiplexer on 443. */
  httpsInternal: 8443,
  /** Postfix's smtps and Dovecot's imaps for clients that reach them through the multiplexer on 443: loopback
   * only, reading the client's address from the PROXY protocol header nginx sends (docs/relay.md). */
  smtpsProxied: 8465,
  imapsProxied: 8993,
  /** Dovecot's OpenMetrics listener, only with mtailAddress (on that address). */
  dovecotStats: 3904,
  /** chatmaild's Prometheus metrics on metricsAddress (not public: never in publicPorts). */
  chatmaildMetrics: METRICS_PORT,
  dns: 53,
} as const;

/** Second resolver in /etc/resolv.conf when no forwarder is configured: answers while unbound is not running yet
 * (first deploy) or restarting, as cmdeploy relays have it. */
export const FALLBACK_RESOLVER = "9.9.9.9";

export const DKIM_SELECTOR = "opendkim";

/** The file a sysctl unit writes, so that its setting survives a reboot. */
export const sysctlFile = (key: string) => `/etc/sysctl.d/90-chatmail-${key}.conf`;

/**
 * Commands that read back what DNS needs from a deployed server: the DKIM public key (only the public half ever
 * leaves the server) and the ACME account URI that CAA pins. The Pulumi Relay and the testbeds run the same.
 */
export const READ_BACK = {
  dkimPublicKey: `openssl pkey -in ${PATHS.dkimPrivateKey} -pubout | sed '/-----/d' | tr -d '\\n'`,
  acmeAccountUrl: "acmetool account-url 2>/dev/null || true",
} as const;

/** Certificate and key paths for the TLS mode in use; every TLS-speaking service reads these. */
export function tlsPaths(config: RelayConfig): { cert: string; key: string } {
  switch (config.tlsMode) {
    case "acme":
      return {
        cert: `/var/lib/acme/live/${config.mailDomain}/fullchain`,
        key: `/var/lib/acme/live/${config.mailDomain}/privkey`,
      };
    case "self-signed":
      return { cert: PATHS.selfSignedCert, key: PATHS.selfSignedKey };
    case "external":
      return { cert: config.tlsCertPath, key: config.tlsKeyPath };
  }
}

/** The UDP ports coturn relays calls through (turnRelayPorts, checked as FIRST-LAST). */
export function turnRelayRange(config: RelayConfig): PortRange {
  const [first, last] = config.turnRelayPorts.split("-").map(Number);
  return { first, last };
}

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** Ports open to the Internet: the Hetzner firewall opens exactly these. */
export function publicPorts(config: RelayConfig): { tcp: number[]; udp: number[]; udpRanges: PortRange[] } {
  const tcp = [
    22,
    PORTS.smtp,
    PORTS.http,
    PORTS.imap,
    PORTS.https,
    PORTS.smtps,
    PORTS.submission,
    PORTS.imaps,
  ];
  if (config.turnServer) {
    // TURN over TCP is for clients whose network blocks UDP.
    return { tcp: [...tcp, PORTS.stun], udp: [PORTS.stun], udpRanges: [turnRelayRange(config)] };
  }
  const udp = runsOwnIrohRelay(config) ? [PORTS.stun] : [];
  return { tcp, udp, udpRanges: [] };
}
