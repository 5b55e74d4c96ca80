// Shapes shared by the website loader, the pure build and the deployment plan that calls them.
import type { RelayConfig } from "../config/options";

/** Every file of a web page folder, keyed by its path relative to that folder with "/" separators. */
export type WebsiteSources = ReadonlyMap<string, Uint8Array>;

/** The options the web pages read; a full RelayConfig satisfies it. */
export type WebsiteConfig = Pick<
  RelayConfig,
  | "mailDomain"
  | "maxUserSendPerMinute"
  | "maxMailboxSize"
  | "maxMessageSize"
  | "deleteMailsAfter"
  | "deleteLargeAfter"
  | "deleteInactiveUsersAfter"
  | "usernameMinLength"
  | "usernameMaxLength"
  | "passwordMinLength"
  | "privacyMail"
  | "privacyPostal"
  | "privacyPdo"
  | "privacySupervisor"
  | "inviteTokens"
  | "languages"
  | "isDevelopmentInstance"
  | "notificationUrl"
>;

/** A printable invite for one invite token; it holds a secret, so it never goes into the web root. */
export interface PrintableInvite {
  readonly token: string;
  /** `dcaccount:https://DOMAIN/new?TOKEN`, the link Delta Chat opens to create a profile with this token. */
  readonly link: string;
  /** A PNG QR code that decodes to exactly `link`. */
  readonly png: Uint8Array;
}

export interface WebsiteBuild {
  /** Files for the web root (/var/www/html), keyed by relative path, in sorted order. */
  readonly files: Map<string, Uint8Array>;
  /** One printable invite per invite token, in config order. */
  readonly invites: PrintableInvite[];
  /** Problems the operator should see but that do not stop the build (e.g. a missing translation). */
  readonly warnings: string[];
}
