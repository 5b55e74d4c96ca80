// What the page Markdown can use: the relay's values (named as in RelayConfig), a few derived ones, and the
// filters `words` and `plural`. Strings are made safe here, once, for both Markdown and HTML.
import { parseSizeMb } from "../config/load";
import type { WebsiteConfig } from "./types";

/**
 * Days the server keeps logs. journald runs volatile with this retention (the plan's journald.conf, as on
 * cmdeploy relays: chatmail/relay 1.7.0, cmdeploy/src/cmdeploy/journald.conf; docs/relay.md, 'Files on the
 * server'); the privacy page states it, so the two must agree.
 */
export const LOG_RETENTION_DAYS = 3;

/** The home page's tokenless QR image in the web root (same name as on cmdeploy relays). */
export const newAccountQrImage = (mailDomain: string) => `qr-chatmail-invite-${mailDomain}.png`;

/** The link of the home page button and QR code (docs/relay.md, 'What a client expects'). */
export const newAccountLink = (mailDomain: string) => `DCACCOUNT:https://${mailDomain}/new`;

/** The link of a printable invite; tokens are URL-safe (the config checks them), so they go in verbatim. */
export const inviteLink = (mailDomain: string, token: string) =>
  `dcaccount:https://${mailDomain}/new?${token}`;

// Letters, digits and a few punctuation marks mean nothing to Markdown or HTML in running text.
const PLAIN = /[\p{L}\p{N}\p{M} .,@:/-]/u;

/**
 * A config string ready for a page: every other character becomes a numeric character reference, so a
 * value such as `data_protection@example.org` or `<Office>` shows as typed instead of turning into emphasis
 * or markup, in Markdown text and in HTML attributes alike. Line breaks (multi-line postal addresses) become
 * <br>.
 */
export function pageText(value: string): string {
  return value
    .split("\n")
    .map((line) => [...line.trim()].map((c) => (PLAIN.test(c) ? c : `&#${c.codePointAt(0)};`)).join(""))
    .join("<br>");
}

/** Escapes text for HTML, for values that never pass through Markdown (the layout's strings). */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ENGLISH_NUMBERS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
];

/** `{{ n | words }}`: 0 to 12 in English words, as the cmdeploy pages write them; larger numbers as digits. */
export function words(n: number): string {
  return ENGLISH_NUMBERS[n] ?? String(n);
}

/**
 * `{{ n | plural("day", "days") }}` (English: one, other) or `{{ n | plural("день", "дня", "дней") }}`
 * (Russian: one, few, many), so sentences agree with a configured number.
 */
export function plural(n: number, ...forms: string[]): string {
  if (forms.length === 2) return n === 1 ? forms[0] : forms[1];
  if (forms.length === 3) {
    const [ones, tens] = [n % 10, n % 100];
    if (ones === 1 && tens !== 11) return forms[0];
    if (ones >= 2 && ones <= 4 && (tens < 12 || tens > 14)) return forms[1];
    return forms[2];
  }
  throw new Error(`plural: needs 2 forms (one, other) or 3 forms (one, few, many), got ${forms.length}`);
}

export type PageValues = Readonly<Record<string, string | number | boolean>>;

/** The values every page's Markdown sees. The invite tokens themselves are secrets and never appear. */
export function pageValues(config: WebsiteConfig): PageValues {
  const inviteOnly = config.inviteTokens.length > 0;
  return {
    mailDomain: pageText(config.mailDomain),
    maxUserSendPerMinute: config.maxUserSendPerMinute,
    maxMailboxSize: pageText(config.maxMailboxSize),
    maxMailboxSizeMb: parseSizeMb(config.maxMailboxSize),
    maxMessageSize: config.maxMessageSize,
    maxMessageSizeMb: Math.floor(config.maxMessageSize / (1024 * 1024)),
    deleteMailsAfter: config.deleteMailsAfter,
    deleteLargeAfter: config.deleteLargeAfter,
    deleteInactiveUsersAfter: config.deleteInactiveUsersAfter,
    usernameMinLength: config.usernameMinLength,
    usernameMaxLength: config.usernameMaxLength,
    passwordMinLength: config.passwordMinLength,
    privacyMail: pageText(config.privacyMail),
    privacyPostal: pageText(config.privacyPostal),
    privacyPdo: pageText(config.privacyPdo),
    privacySupervisor: pageText(config.privacySupervisor),
    isDevelopmentInstance: config.isDevelopmentInstance,
    inviteOnly,
    newAccountLink: inviteOnly ? "" : pageText(newAccountLink(config.mailDomain)),
    newAccountQrImage: inviteOnly ? "" : pageText(newAccountQrImage(config.mailDomain)),
    logRetentionDays: LOG_RETENTION_DAYS,
    // The privacy page names where push tokens go (chatmail-metadata posts them to notificationUrl).
    notificationHost: pageText(new URL(config.notificationUrl).host),
  };
}
