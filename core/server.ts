// Server facts that the daemons and the plan share: fixed paths and sockets, the user the daemons run as, the
// services of the daemon bundle and the node flags of its unit. The plan writes them into units and templates
// (core/plan/facts.ts builds its PATHS and USERS from these), the daemons use them as their defaults, so a socket
// named in dovecot.conf and the one a daemon listens on are the same string. They match existing cmdeploy relays
// (docs/decisions.md, 'Same paths and formats as cmdeploy relays'), so a relay keeps working when it moves here.
// Constants only: no I/O, no config.

/** The relay config the daemons read on the server. */
export const CHATMAIL_INI = "/usr/local/lib/chatmaild/chatmail.ini";
/** Where systemd puts the bundled multi-call daemon program. */
export const CHATMAILD_JS = "/usr/local/lib/chatmaild/chatmaild.js";
/**
 * Node flags for the unit's ExecStart (`node <flags> chatmaild.js ...`). The semi-space bounds the young
 * generation (3 x the size); the default lets it grow to 16 MB x 3 under request bursts. Too small is as bad:
 * a message's Buffers then outlive two scavenges, get promoted, and their memory (V8 counts it as external) is
 * only freed at a full collection, which V8 starts once 64 MB of such memory piled up. `npm run bench --
 * memory`, peak RSS under 50 clients of 100 KB mail plus lookups and creations: 102-135 MiB at 2 MB (dead
 * ArrayBuffers up to 72 MiB), 83-91 MiB at 3 MB (up to 23 MiB), 121 MiB at 16 MB; idle unchanged.
 */
export const CHATMAILD_NODE_FLAGS = ["--max-semi-space-size=3"] as const;

/** doveauth's dict socket: Dovecot's passdb/userdb (`uri = proxy:<socket>:auth` in auth.conf). */
export const DOVEAUTH_SOCKET = "/run/doveauth/doveauth.socket";
/** The IMAP METADATA dict socket (`mail_attribute_dict = proxy:<socket>:metadata`). */
export const METADATA_SOCKET = "/run/chatmail-metadata/metadata.socket";
/** The last_login plugin's dict socket (`last_login_dict = proxy:<socket>:lastlogin`). */
export const LASTLOGIN_SOCKET = "/run/chatmail-lastlogin/lastlogin.socket";
/** Dovecot dict names after the socket in the `proxy:` URIs above. */
export const DICT_NAMES = { doveauth: "auth", metadata: "metadata", lastlogin: "lastlogin" } as const;

/** While this file exists no new addresses are created (the operator's kill switch). */
export const NOCREATE_FILE = "/etc/chatmail-nocreate";
/** STUN and TURN: coturn answers both here (turnServer); the metadata daemon gives it to clients with TURN
 * credentials. Without coturn, the relay's iroh-relay answers STUN here. */
export const STUN_PORT = 3478;
/** The latest Delta Chat app versions, one JSON object, when the operator gives them (appVersionsFile). */
export const APPVERSIONS_FILE = "/etc/chatmail/appversions.json";
/** Sub-directory of mailboxesDir holding the push notifications still to deliver. */
export const PENDING_NOTIFICATIONS_DIR = "pending_notifications";
/** Where fsreport's Prometheus text file goes by default (node-exporter textfile collector style). */
export const FSREPORT_TEXTFILE_DIR = "/var/lib/prometheus/node-exporter";
/** Legacy public metrics file served by nginx on relays before 1.10. */
export const LEGACY_METRICS_FILE = "/var/www/html/metrics";
/** chatmaild's Prometheus listener: /metrics on metricsAddress at this port (docs/metrics.md). */
export const METRICS_PORT = 9103;
/**
 * What the metrics report about the server that only the plan knows: the services it runs and the TLS
 * certificate the relay serves (`key value` lines, written by the plan when metricsAddress is set; read by
 * daemons/metrics/system.ts).
 */
export const METRICS_FACTS = "/usr/local/lib/chatmaild/metrics.conf";
/** The user all daemons run as, owner of the mailboxes. */
export const VMAIL_USER = "vmail";

/** The long-running services of chatmaild.js, all run by one process (chatmaild.service). */
export const SERVICES = [
  "doveauth",
  "lastlogin",
  "metadata",
  "newaccount",
  "filtermail-outgoing",
  "filtermail-incoming",
] as const;
export type ServiceName = (typeof SERVICES)[number];
