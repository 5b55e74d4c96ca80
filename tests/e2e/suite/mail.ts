// Mail between two accounts of the relay, as Delta Chat sends it: OpenPGP/MIME over 587 and 465, delivered,
// DKIM-signed and with the subject hidden; cleartext to another domain and forged senders are refused.
import { randomUUID } from "node:crypto";
import * as openpgp from "openpgp";
import { DKIM_SELECTOR } from "../../../components/plan/facts";
import { waitFor } from "../proc";
import { imapLogin, newCredentials, submit, submitCode, type Account, type SubmissionPort } from "./clients";
import type { E2eTest, SuiteContext } from "./types";

const MAIL = [
  "service:postfix.service",
  "service:dovecot.service",
  "service:doveauth.service",
  "service:filtermail.service",
  "service:opendkim.service",
];
const DELIVERY_DEADLINE_MS = 30_000;

function mime(headers: Record<string, string>, contentType: string, body: string): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return [...lines, "MIME-Version: 1.0", `Content-Type: ${contentType}`, "", body].join("\r\n").replace(/\r?\n/g, "\r\n");
}

function envelopeHeaders(from: Account, to: string, subject: string, domain: string) {
  const messageId = `<${randomUUID()}@${domain}>`;
  return {
    messageId,
    headers: { From: `<${from.addr}>`, To: `<${to}>`, Subject: subject, Date: new Date().toUTCString(), "Message-ID": messageId },
  };
}

/** An RFC 3156 PGP/MIME message whose payload openpgp.js encrypted to `recipientKey`. */
async function encryptedMessage(from: Account, to: string, domain: string, text: string, recipientKey: openpgp.Key) {
  const armored = await openpgp.encrypt({ message: await openpgp.createMessage({ text }), encryptionKeys: recipientKey });
  const boundary = `b${randomUUID()}`;
  const { messageId, headers } = envelopeHeaders(from, to, "...", domain);
  const body = [
    `--${boundary}`,
    "Content-Type: application/pgp-encrypted",
    "Content-Description: PGP/MIME version identification",
    "",
    "Version: 1",
    "",
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    "Content-Description: OpenPGP encrypted message",
    'Content-Disposition: inline; filename="encrypted.asc"',
    "",
    String(armored).trimEnd(),
    "",
    `--${boundary}--`,
    "",
  ].join("\r\n");
  return {
    messageId,
    raw: mime(headers, `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`, body),
  };
}

/** Waits until a message with this Message-ID is in the account's INBOX and returns its source. */
async function receive(ctx: SuiteContext, account: Account, messageId: string): Promise<string> {
  const client = await imapLogin(ctx, account);
  try {
    await client.mailboxOpen("INBOX");
    return await waitFor(`message ${messageId} in ${account.addr}'s INBOX`, DELIVERY_DEADLINE_MS, async () => {
      await client.noop();
      const uids = await client.search({ header: { "message-id": messageId } }, { uid: true });
      if (!uids || uids.length === 0) return undefined;
      const msg = await client.fetchOne(String(uids[0]), { source: true }, { uid: true });
      return msg ? msg.source?.toString("utf8") : undefined;
    }, 500);
  } finally {
    await client.logout();
  }
}

function headerBlock(source: string): string {
  return source.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, " ");
}

async function encryptedRoundTrip(ctx: SuiteContext, port: SubmissionPort) {
  const a = newCredentials(ctx);
  const b = newCredentials(ctx);
  // Both accounts exist before mail flows, as they would after Delta Chat's setup.
  for (const acc of [a, b]) await (await imapLogin(ctx, acc)).logout();
  const { privateKey, publicKey } = await openpgp.generateKey({ type: "curve25519", userIDs: [{ email: b.addr }], format: "object" });
  const text = `hello over ${port} ${randomUUID()}`;
  const { messageId, raw } = await encryptedMessage(a, b.addr, ctx.domain, text, publicKey);
  await submit(ctx, a, port, { from: a.addr, to: [b.addr] }, raw);
  const source = await receive(ctx, b, messageId);
  const headers = headerBlock(source);
  if (!/^Subject: \[\.\.\.\]$/im.test(headers)) throw new Error(`subject not hidden: ${headers.match(/^Subject:.*$/im)?.[0] ?? "no Subject"}`);
  const dkim = headers.match(/^DKIM-Signature:.*$/im)?.[0] ?? "";
  if (!dkim.includes(`d=${ctx.domain}`) || !dkim.includes(`s=${DKIM_SELECTOR}`)) {
    throw new Error(`no DKIM signature with d=${ctx.domain} s=${DKIM_SELECTOR}: ${dkim || "none"}`);
  }
  const armored = source.match(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/)?.[0];
  if (!armored) throw new Error("the delivered message has no PGP payload");
  const { data } = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: armored }), decryptionKeys: privateKey });
  if (data !== text) throw new Error(`decrypted text differs: ${JSON.stringify(data)}`);
}

export const mail: E2eTest[] = [
  {
    name: "an OpenPGP message from A to B over 587 (STARTTLS) arrives DKIM-signed with the subject hidden",
    needs: MAIL,
    run: (ctx) => encryptedRoundTrip(ctx, 587),
  },
  {
    name: "an OpenPGP message from A to B over 465 (implicit TLS) arrives DKIM-signed with the subject hidden",
    needs: MAIL,
    run: (ctx) => encryptedRoundTrip(ctx, 465),
  },
  {
    name: "unencrypted mail to another domain is refused with 523",
    needs: MAIL,
    async run(ctx) {
      const a = newCredentials(ctx);
      const to = "someone@example.org";
      const { headers } = envelopeHeaders(a, to, "plain", ctx.domain);
      const code = await submitCode(ctx, a, 587, { from: a.addr, to: [to] }, mime(headers, "text/plain; charset=utf-8", "hello in cleartext\r\n"));
      if (code !== 523) throw new Error(`expected 523 Encryption Needed, got ${code ?? "acceptance"}`);
    },
  },
  {
    name: "a MAIL FROM other than the logged-in address is refused with 553",
    needs: MAIL,
    async run(ctx) {
      const a = newCredentials(ctx);
      const b = newCredentials(ctx);
      await (await imapLogin(ctx, b)).logout();
      const forged = newCredentials(ctx).addr;
      const { headers } = envelopeHeaders({ ...a, addr: forged }, b.addr, "...", ctx.domain);
      const code = await submitCode(ctx, a, 465, { from: forged, to: [b.addr] }, mime(headers, "text/plain", "x\r\n"));
      if (code !== 553) throw new Error(`expected 553, got ${code ?? "acceptance"}`);
    },
  },
];
