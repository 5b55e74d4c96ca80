// Test helpers: the mail-data samples (chatmail/relay 1.7.0, chatmaild/src/chatmaild/tests/mail-data/; their
// verdicts in mail-data/README.md) filled in and sent as SMTP would carry them, with CRLF line ends, plus a
// policy for the pure verdict function.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { VerdictPolicy } from "../../daemons/filtermail/verdict";

// Copied unchanged from chatmail/relay 1.7.0, chatmaild/src/chatmaild/tests/mail-data/, so the repository is
// self-contained.
export const MAIL_DATA_DIR = join(__dirname, "mail-data");

export const SAMPLE_NAMES = [
  "asm",
  "encrypted",
  "fake-encrypted",
  "literal",
  "mailer-daemon",
  "mdn",
  "plain",
  "securejoin-vc",
  "securejoin-vc-fake",
] as const;
export type SampleName = (typeof SAMPLE_NAMES)[number];

export function sample(name: SampleName, fromAddr: string, toAddr: string, subject = "[...]"): Buffer {
  const text = readFileSync(join(MAIL_DATA_DIR, `${name}.eml`), "utf8")
    .replaceAll("{from_addr}", fromAddr)
    .replaceAll("{to_addr}", toAddr)
    .replaceAll("{subject}", subject);
  return Buffer.from(text.replace(/\r?\n/g, "\r\n"), "utf8");
}

export const DOMAIN = "chat.example.org";

/** A policy for `decide`: passthrough lists off, and the given local addresses enforce E2EE incoming. */
export function policy(opts: Partial<VerdictPolicy> & { enforcing?: string[] } = {}): VerdictPolicy {
  const enforcing = new Set(opts.enforcing ?? []);
  return {
    mailDomain: opts.mailDomain ?? DOMAIN,
    passthroughSenders: opts.passthroughSenders ?? [],
    passthroughRecipients: opts.passthroughRecipients ?? [],
    incomingCleartextAllowed: opts.incomingCleartextAllowed ?? ((addr) => !enforcing.has(addr.toLowerCase())),
  };
}
