// Every answer filtermail itself gives, in one table, with where its text comes from. The texts are the
// upstream ones (chatmail/relay 1.7.0, chatmaild/src/chatmaild/filtermail.py, and the Rust filter of 1.12.0,
// chatmail/filtermail v0.7.4) because operators, mtail and Delta Chat's tests match them.

import { reply, type Reply } from "../smtp/reply";

export const REPLIES = {
  /** Message accepted by the filter and by the reinjection smtpd (only used when no downstream reply exists). */
  ok: reply(250, "OK"),
  /** Unencrypted mail that no exception lets through (1.7.0 and Rust text). */
  encryptionNeeded: reply(523, "Encryption Needed: Invalid Unencrypted Mail"),
  /** MAIL FROM that is not exactly one "@" address (Rust text, without Python's repr quotes). */
  invalidFromAddress: (address: string) => reply(500, `Invalid from address <${address}>`),
  /** Per-sender rate limit exceeded (1.7.0 text; Postfix shows it to the client at RCPT time). */
  tooMuchMail: (address: string) => reply(450, `4.7.1: Too much mail from ${address}`),
  /** From header missing, unparsable, or not one address (Rust text). */
  invalidFromHeader: (value: string) => reply(500, `Invalid FROM header: ${value}`),
  /** From header differs from the envelope sender (Rust text). */
  fromMismatch: (fromAddr: string, mailFrom: string) =>
    reply(500, `Invalid FROM <${fromAddr}> for <${mailFrom}>`),
  /** The reinjection smtpd could not be reached or did not answer in time: the client must retry (Rust text). */
  localError: reply(451, "Local error"),
} as const;

export type { Reply };
