// The filter's decision as a pure function of direction, envelope, message bytes and policy: no sockets,
// no clock, no files (the one file-system question, a recipient's enforceE2EEincoming marker, comes in as a
// callback). The rules and their order are in docs/daemons.md, 'Encryption filter': those of chatmail/relay
// 1.7.0 (chatmaild/src/chatmaild/filtermail.py) plus the fixes of the Rust filter that 1.12.0 installs
// (chatmail/filtermail v0.7.4).

import {
  domainOf,
  normalizeAddress,
  parseFromHeader,
  recipientMatchesPassthrough,
  sameMailbox,
} from "./address";
import { MimeEntity, trimAscii, type Multipart } from "./mime";
import { checkArmoredPayload } from "./openpgp";
import { REPLIES, type Reply } from "./replies";

export type Direction = "outgoing" | "incoming";

export interface VerdictEnvelope {
  mailFrom: string;
  rcptTos: readonly string[];
}

export interface VerdictPolicy {
  mailDomain: string;
  /** Envelope senders that may send unencrypted mail (outgoing; the same mailbox, see normalizeAddress). */
  passthroughSenders: readonly string[];
  /** Recipients that may get unencrypted mail (outgoing; the same mailbox, or "@domain"). */
  passthroughRecipients: readonly string[];
  /** Incoming: true when this local address (normalised: "user@domain") has no enforceE2EEincoming marker. */
  incomingCleartextAllowed(recipient: string): boolean;
}

/**
 * The rule that decided, a short stable name per direction and outcome: the `rule` label of
 * chatmail_filter_verdicts_total (docs/metrics.md). Bounded: these and no other values.
 */
export const VERDICT_RULES = {
  outgoing: {
    accepted: ["encrypted", "securejoin", "passthrough", "setup_message"],
    refused: ["from_header", "sender_mismatch", "framing", "cleartext"],
  },
  incoming: {
    accepted: ["encrypted", "securejoin", "bounce", "cleartext_allowed"],
    refused: ["from_header", "framing", "cleartext"],
  },
} as const;

type RuleOf<D extends Direction, O extends "accepted" | "refused"> = (typeof VERDICT_RULES)[D][O][number];
export type AcceptRule = RuleOf<"outgoing", "accepted"> | RuleOf<"incoming", "accepted">;
export type RefuseRule = RuleOf<"outgoing", "refused"> | RuleOf<"incoming", "refused">;

export type Verdict =
  | {
      accept: true;
      /** Envelope sender to reinject with ("" when an incoming From does not match: no bounce to a forger). */
      mailFrom: string;
      /** Lines for the log; mtail counts them (docs/daemons.md, 'Log lines'). */
      log: string[];
      rule: AcceptRule;
    }
  | { accept: false; reply: Reply; log: string[]; rule: RefuseRule };

// Log lines that are a contract with mtail's delivered_mail.mtail: do not reword.
export const LOG = {
  outgoingEncrypted: "Outgoing: Filtering encrypted mail.",
  outgoingUnencrypted: "Outgoing: Filtering unencrypted mail.",
  incomingEncrypted: "Incoming: Filtering encrypted mail.",
  incomingUnencrypted: "Incoming: Filtering unencrypted mail.",
  incomingMailerDaemon: (from: string) => `Incoming: Filtering mailer-daemon message from ${from}`,
  rejected: "Rejected unencrypted mail.",
} as const;

export function decide(
  direction: Direction,
  envelope: VerdictEnvelope,
  message: Buffer,
  policy: VerdictPolicy,
): Verdict {
  const log: string[] = [];
  const entity = MimeEntity.parse(message);
  const fromValue = entity.header("from");
  const fromAddr = fromValue === undefined ? undefined : parseFromHeader(fromValue);
  if (fromAddr === undefined)
    return { accept: false, reply: REPLIES.invalidFromHeader(fromValue ?? ""), log, rule: "from_header" };
  const fromMatches = envelope.mailFrom.toLowerCase() === fromAddr.toLowerCase();
  const encrypted = isEncrypted(entity, direction)
    ? "encrypted"
    : isSecureJoin(entity)
      ? "securejoin"
      : undefined;

  if (direction === "outgoing") {
    if (!fromMatches)
      return {
        accept: false,
        reply: REPLIES.fromMismatch(fromAddr, envelope.mailFrom),
        log,
        rule: "sender_mismatch",
      };
    const accept = (rule: AcceptRule): Verdict => ({ accept: true, mailFrom: envelope.mailFrom, log, rule });
    if (encrypted) {
      log.push(LOG.outgoingEncrypted);
      return accept(encrypted);
    }
    log.push(LOG.outgoingUnencrypted);
    if (policy.passthroughSenders.some((s) => sameMailbox(s, envelope.mailFrom, policy.mailDomain)))
      return accept("passthrough");
    if (isSelfSentSetupMessage(entity, envelope, fromAddr, policy.mailDomain)) return accept("setup_message");
    const passthrough = (r: string) =>
      recipientMatchesPassthrough(r, policy.passthroughRecipients, policy.mailDomain);
    if (envelope.rcptTos.every(passthrough)) return accept("passthrough");
    log.push(LOG.rejected);
    return { accept: false, reply: REPLIES.encryptionNeeded, log, rule: refusalRule(entity) };
  }

  // Incoming: a From that does not match the envelope is not refused, but the mail is reinjected with the null
  // sender so that no bounce goes to a possibly forged address (Rust filtermail issue #67).
  const accept = (rule: AcceptRule): Verdict => ({
    accept: true,
    mailFrom: fromMatches ? envelope.mailFrom : "",
    log,
    rule,
  });
  if (encrypted) {
    log.push(LOG.incomingEncrypted);
    return accept(encrypted);
  }
  log.push(LOG.incomingUnencrypted);
  if (isBounce(entity, fromAddr)) {
    log.push(LOG.incomingMailerDaemon(fromAddr));
    return accept("bounce");
  }
  // Cleartext only reaches local addresses that did not ask for end-to-end encryption (no marker file);
  // a recipient outside the relay's own domain has no such choice to make and is refused. The marker is looked
  // up for the account Postfix and Dovecot will deliver to, not the literal "user+x" or "\"user\"" address.
  const allowed = (r: string) => {
    const mailbox = normalizeAddress(r, policy.mailDomain);
    return (
      mailbox !== undefined &&
      domainOf(mailbox) === policy.mailDomain.toLowerCase() &&
      policy.incomingCleartextAllowed(mailbox)
    );
  };
  if (envelope.rcptTos.every(allowed)) return accept("cleartext_allowed");
  log.push(LOG.rejected);
  return { accept: false, reply: REPLIES.encryptionNeeded, log, rule: refusalRule(entity) };
}

/** Cleartext that claims otherwise (multipart/encrypted, a Secure-Join header) failed on its framing. */
function refusalRule(entity: MimeEntity): RefuseRule {
  return entity.contentType === "multipart/encrypted" || entity.header("secure-join") !== undefined
    ? "framing"
    : "cleartext";
}

/** RFC 3156 PGP/MIME with a real encrypted payload (upstream `check_encrypted`), and no text around it. */
export function isEncrypted(entity: MimeEntity, direction: Direction): boolean {
  if (entity.contentType !== "multipart/encrypted") return false;
  const multipart = readMultipart(entity, ENCRYPTED_PREAMBLES);
  const parts = multipart?.parts;
  // Upstream accepts zero parts (nothing to read, but also nothing encrypted); we require at least one.
  if (!parts || parts.length === 0 || parts.length > 2) return false;
  const version = MimeEntity.parse(parts[0]);
  if (version.contentType !== "application/pgp-encrypted" || !readsOneWay(version)) return false;
  if (!trimAscii(version.body).equals(VERSION_1)) return false;
  // QUIRK kept from upstream: a multipart/encrypted with only the version part passes (check_encrypted in
  // chatmail/relay 1.7.0, chatmaild/src/chatmaild/filtermail.py; the Rust filter does the same).
  if (parts.length === 1) return true;
  const data = MimeEntity.parse(parts[1]);
  if (data.contentType !== "application/octet-stream" || !readsOneWay(data)) return false;
  return checkArmoredPayload(data.body, direction);
}

const VERSION_1 = Buffer.from("Version: 1");
const SECURE_JOIN_REQUESTS = ["vc-request", "vg-request"];

// The only text accepted before the parts of an encrypted message: the fixed notes that real clients write
// for readers without OpenPGP (Thunderbird and Enigmail; older GnuPG tools cite RFC 2440), and the generic one
// many MIME libraries write before any multipart. Being fixed, they carry nothing of the sender's. Delta Chat
// writes none.
const ENCRYPTED_PREAMBLES = [
  "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
  "This is an OpenPGP/MIME encrypted message (RFC 2440 and 3156)",
  "This is a multi-part message in MIME format.",
].map((text) => Buffer.from(text));

// Headers that decide how an entity is read. Where one repeats, readers differ in which one they take (the
// filter takes the first, others the last), so a reader could see text where the filter saw an encrypted part.
const STRUCTURAL_HEADERS = ["content-type", "content-transfer-encoding", "mime-version"];
// RFC 2045 6.4: a multipart entity itself is never encoded; a reader that decoded one anyway would read other
// bytes than the filter checked.
const MULTIPART_ENCODINGS = ["7bit", "8bit", "binary"];

/** The structural headers occur at most once, and the Content-Type names each parameter once. */
function readsOneWay(entity: MimeEntity): boolean {
  return (
    STRUCTURAL_HEADERS.every((name) => entity.headerCount(name) <= 1) && !entity.contentTypeInfo.repeatedParam
  );
}

/**
 * The parts of a multipart entity that is read one way and carries no text outside its parts: the preamble is
 * blank or one of `preambles`, the epilogue blank (real clients end with line breaks). Mail readers show a
 * preamble or epilogue as text when they cannot read the parts, so any other text there would reach the
 * recipient as cleartext. Undefined otherwise.
 */
function readMultipart(entity: MimeEntity, preambles: readonly Buffer[]): Multipart | undefined {
  const encoding = entity.header("content-transfer-encoding")?.toLowerCase();
  if (!readsOneWay(entity) || (encoding !== undefined && !MULTIPART_ENCODINGS.includes(encoding)))
    return undefined;
  const multipart = entity.multipart();
  if (!multipart || trimAscii(multipart.epilogue).length > 0) return undefined;
  const preamble = trimAscii(multipart.preamble);
  if (preamble.length > 0 && !preambles.some((p) => p.equals(preamble))) return undefined;
  return multipart;
}

/** An unencrypted Secure-Join vc/vg-request handshake message (upstream `is_securejoin`), nothing else in it. */
export function isSecureJoin(entity: MimeEntity): boolean {
  const value = entity.header("secure-join");
  if (value === undefined || !SECURE_JOIN_REQUESTS.includes(value)) return false;
  const parts = readMultipart(entity, [])?.parts;
  if (!parts || parts.length !== 1) return false;
  const part = MimeEntity.parse(parts[0]);
  if (part.contentType !== "text/plain" || !readsOneWay(part)) return false;
  const text = trimAscii(part.body).toString("utf8").toLowerCase();
  return SECURE_JOIN_REQUESTS.some((r) => text === `secure-join: ${r}`);
}

/**
 * An Autocrypt Setup Message sent only to the sender itself: the one cleartext mail a client must be able to send
 * (docs/daemons.md, 'Encryption filter').
 */
function isSelfSentSetupMessage(
  entity: MimeEntity,
  envelope: VerdictEnvelope,
  fromAddr: string,
  mailDomain: string,
): boolean {
  return (
    envelope.rcptTos.length === 1 &&
    sameMailbox(envelope.rcptTos[0], fromAddr, mailDomain) &&
    entity.header("subject") === "Autocrypt Setup Message" &&
    entity.contentType === "multipart/mixed"
  );
}

/**
 * A delivery status notification from a mailer daemon: other servers send bounces unencrypted
 * (docs/daemons.md, 'Encryption filter').
 */
function isBounce(entity: MimeEntity, fromAddr: string): boolean {
  const autoSubmitted = entity.header("auto-submitted");
  return (
    autoSubmitted !== undefined &&
    autoSubmitted !== "" &&
    fromAddr.toLowerCase().startsWith("mailer-daemon@") &&
    entity.contentType === "multipart/report"
  );
}
