// The daemons' configuration: the options marked `daemons: true` in options.ts and nothing else (no SSH key, no
// Hetzner or DNS settings). They are exactly what core/plan writes into the server's chatmail.ini
// (renderChatmailIni), and the daemons read that file back with the same rules as any chatmail.ini
// (parseChatmailIni: defaults, checks, cmdeploy spellings). daemons/config.ts reads the file; this is pure.
import { parseChatmailIni } from "./ini";
import type { RelayConfig } from "./options";

export { irohRelayUrl, parseSizeMb } from "./load";

/** The options the daemons read, in table order; tests/config/daemon.test.ts checks them against the table. */
export const DAEMON_OPTION_NAMES = [
  "mailDomain",
  "maxUserSendPerMinute",
  "maxUserSendBurstSize",
  "maxMailboxSize",
  "maxMessageSize",
  "deleteMailsAfter",
  "deleteLargeAfter",
  "deleteInactiveUsersAfter",
  "usernameMinLength",
  "usernameMaxLength",
  "passwordMinLength",
  "passwordMaxLength",
  "accountCreationsPerMinute",
  "accountCreationsPerMinutePerClient",
  "passthroughSenders",
  "passthroughRecipients",
  "filtermailSmtpPort",
  "filtermailSmtpPortIncoming",
  "postfixReinjectPort",
  "postfixReinjectPortIncoming",
  "newAccountPort",
  "irohRelay",
  "metricsAddress",
  "mailboxesDir",
  "inviteTokens",
  "maxLoad1m",
  "minAvailableMemory",
  "minFreeDiskSpace",
  "notificationUrl",
  "tlsMode",
] as const satisfies readonly (keyof RelayConfig)[];

export type DaemonOptionName = (typeof DAEMON_OPTION_NAMES)[number];

/** What every daemon is given: the checked values of the daemon options. */
export type DaemonConfig = Pick<RelayConfig, DaemonOptionName>;

export interface ParsedDaemonConfig {
  config: DaemonConfig;
  /** Keys of the file that set nothing; the caller reports them. */
  unknownKeys: string[];
}

/** The daemon options of a checked relay config. */
export function daemonConfig(config: RelayConfig): DaemonConfig {
  return Object.freeze(
    Object.fromEntries(DAEMON_OPTION_NAMES.map((name) => [name, config[name]])),
  ) as DaemonConfig;
}

/** Reads the text of a chatmail.ini (ours or cmdeploy's) into the daemons' configuration. */
export function parseDaemonConfig(text: string): ParsedDaemonConfig {
  const { config, unknownKeys } = parseChatmailIni(text);
  return { config: daemonConfig(config), unknownKeys };
}
