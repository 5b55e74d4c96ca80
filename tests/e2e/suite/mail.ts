// Mail as Delta Chat sends it: OpenPGP/MIME over 587 and 465 is delivered with the subject hidden and without
// the client's address, leaves for other domains DKIM-signed; cleartext to another domain, forged senders and
// sending past the rate limit are refused. (Local deliveries drop DKIM-Signature headers on purpose.)
import { randomUUID } from "node:crypto";
import * as openpgp from "openpgp";
import { DKIM_SELECTOR } from "../../../core/plan/facts";
import { waitFor } from "../proc";
import { createTransport } from "nodemailer";
import {
  imapLogin,
  newCredentials,
  submit,
  submitCode,
  tlsOpts,
  type Account,
  type SubmissionPort,
} from "./clients";
import type { E2eTest, SuiteContext } from "./types";

export const MAIL = [
  "service:postfix.service",
  "service:dovecot.service",
  "service:chatmaild.service",
  "service:opendkim.service",
];
const DELIVERY_DEADLINE_MS = 30_000;

function mime(headers: Record<string, string>, contentType: string, body: string): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return [...lines, "MIME-Version: 1.0", `Content-Type: ${contentType}`, "", body]
    .join("\r\n")
    .replace(/\r?\n/g, "\r\n");
}

function envelopeHeaders(from: Account, to: string, subject: string, domain: string) {
  const messageId = `<${randomUUID()}@${domain}>`;
  return {
    messageId,
    headers: {
      From: `<${from.addr}>`,
      To: `<${to}>`,
      Subject: subject,
      Date: new Date().toUTCString(),
      "Message-ID": messageId,
    },
  };
}

/** An RFC 3156 PGP/MIME message whose payload openpgp.js encrypted to `recipientKey`. */
export async function encryptedMessage(
  from: Account,
  to: string,
  domain: string,
  text: string,
  recipientKey: openpgp.Key,
) {
  const armored = await openpgp.encrypt({
    message: await openpgp.createMessage({ text }),
    encryptionKeys: recipientKey,
  });
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
    raw: mime(
      headers,
      `multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`,
      body,
    ),
  };
}

/** Waits until a message with this Message-ID is in the account's INBOX and returns its source. */
export async function receive(ctx: SuiteContext, account: Account, messageId: string): Promise<string> {
  const client = await imapLogin(ctx, account);
  try {
    await client.mailboxOpen("INBOX");
    return await waitFor(
      `message ${messageId} in ${account.addr}'s INBOX`,
      DELIVERY_DEADLINE_MS,
      async () => {
        await client.noop();
        const uids = await client.search({ header: { "message-id": messageId } }, { uid: true });
        if (!uids || uids.length === 0) return undefined;
        const msg = await client.fetchOne(String(uids[0]), { source: true }, { uid: true });
        return msg ? msg.source?.toString("utf8") : undefined;
      },
      500,
    );
  } finally {
    await client.logout();
  }
}

/** Headers a mail client could add that identify its device or network; the relay removes them. */
const CLIENT_IP = "198.51.100.77";
const CLIENT_HEADERS = [
  "X-Mailer: e2e-mailer/1.0",
  "User-Agent: e2e-agent/1.0",
  `X-Originating-IP: [${CLIENT_IP}]`,
  `Received: from laptop ([${CLIENT_IP}]) by client.example`,
];

function headerBlock(source: string): string {
  return source.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, " ");
}

async function encryptedRoundTrip(ctx: SuiteContext, port: SubmissionPort) {
  const a = newCredentials(ctx);
  const b = newCredentials(ctx);
  // Both accounts exist before mail flows, as they would after Delta Chat's setup.
  for (const acc of [a, b]) await (await imapLogin(ctx, acc)).logout();
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: "curve25519",
    userIDs: [{ email: b.addr }],
    format: "object",
  });
  const text = `hello over ${port} ${randomUUID()}`;
  const { messageId, raw } = await encryptedMessage(a, b.addr, ctx.domain, text, publicKey);
  // What a careless client might add: the relay's header cleanup must strip all of it and hide the subject.
  const sent =
    CLIENT_HEADERS.join("\r\n") + "\r\n" + raw.replace(/^Subject: .*$/m, "Subject: Unencrypted subject");
  await submit(ctx, a, port, { from: a.addr, to: [b.addr] }, sent);
  const source = await receive(ctx, b, messageId);
  const headers = headerBlock(source);
  if (!/^Subject: \[\.\.\.\]$/im.test(headers))
    throw new Error(`subject not hidden: ${headers.match(/^Subject:.*$/im)?.[0] ?? "no Subject"}`);
  for (const leak of ["Unencrypted subject", "e2e-mailer", "e2e-agent", CLIENT_IP]) {
    if (source.includes(leak)) throw new Error(`"${leak}" reached the recipient:\n${headers}`);
  }
  // The client's address (the host end of the test link) must not reach the recipient.
  const clientAddr = ctx.hostSide.baseUrl.replace(/^http:\/\/|:\d+$/g, "");
  if (source.includes(clientAddr))
    throw new Error(`the sender's address ${clientAddr} appears in the delivered message:\n${headers}`);
  const armored = source.match(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/)?.[0];
  if (!armored) throw new Error("the delivered message has no PGP payload");
  const { data } = await openpgp.decrypt({
    message: await openpgp.readMessage({ armoredMessage: armored }),
    decryptionKeys: privateKey,
  });
  if (data !== text) throw new Error(`decrypted text differs: ${JSON.stringify(data)}`);
}

export const mail: E2eTest[] = [
  {
    name: "an OpenPGP message from A to B over 587 (STARTTLS) arrives decryptable, with client headers removed, subject hidden, no client IP",
    needs: MAIL,
    run: (ctx) => encryptedRoundTrip(ctx, 587),
  },
  {
    name: "an OpenPGP message from A to B over 465 (implicit TLS) arrives decryptable, with client headers removed, subject hidden, no client IP",
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
      const code = await submitCode(
        ctx,
        a,
        587,
        { from: a.addr, to: [to] },
        mime(headers, "text/plain; charset=utf-8", "hello in cleartext\r\n"),
      );
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
      const code = await submitCode(
        ctx,
        a,
        465,
        { from: forged, to: [b.addr] },
        mime(headers, "text/plain", "x\r\n"),
      );
      if (code !== 553) throw new Error(`expected 553, got ${code ?? "acceptance"}`);
    },
  },
  {
    name: "sending past maxUserSendBurstSize at once is deferred with 450 4.7.1",
    needs: MAIL,
    async run(ctx) {
      const burst = ctx.first.config.maxUserSendBurstSize;
      const a = newCredentials(ctx);
      const b = newCredentials(ctx);
      await (await imapLogin(ctx, b)).logout();
      const { publicKey } = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ email: b.addr }],
        format: "object",
      });
      const tls = await tlsOpts(ctx);
      // One connection for all messages, as a busy client would send them.
      const transport = createTransport({
        pool: true,
        maxConnections: 1,
        maxMessages: Infinity,
        host: ctx.addr,
        port: 465,
        secure: true,
        auth: { user: a.addr, pass: a.password },
        tls: { ca: tls.ca, servername: ctx.domain },
      });
      const codes: Array<number | "ok"> = [];
      // Prepared first, so the messages go out faster than the limiter refills (one per 60 s / the rate).
      const messages = await Promise.all(
        Array.from({ length: burst + 5 }, (_, i) =>
          encryptedMessage(a, b.addr, ctx.domain, `message ${i}`, publicKey),
        ),
      );
      try {
        for (const { raw } of messages) {
          try {
            await transport.sendMail({ envelope: { from: a.addr, to: [b.addr] }, raw });
            codes.push("ok");
          } catch (e) {
            const err = e as { responseCode?: number; response?: string };
            if (err.responseCode !== 450 || !String(err.response).includes("4.7.1")) throw e;
            codes.push(450);
          }
        }
      } finally {
        transport.close();
      }
      const firstDeferred = codes.indexOf(450);
      if (codes.slice(0, burst).some((c) => c !== "ok"))
        throw new Error(`deferred within the burst of ${burst}: ${codes.join(" ")}`);
      if (firstDeferred < 0)
        throw new Error(`${burst + 5} messages at once were all accepted (burst ${burst})`);
    },
  },
  {
    name: "an OpenPGP message to another domain leaves DKIM-signed by the relay (s=opendkim, d=relay domain)",
    needs: MAIL,
    async run(ctx) {
      const a = newCredentials(ctx);
      const to = `someone${randomUUID().slice(0, 8)}@example.org`;
      const { publicKey } = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ email: to }],
        format: "object",
      });
      const { messageId, raw } = await encryptedMessage(a, to, ctx.domain, "to another relay", publicKey);
      await submit(ctx, a, 587, { from: a.addr, to: [to] }, raw);
      // The namespace has no route out, so the message waits in Postfix's queue, already signed; read it there
      // and delete it.
      const headers = await waitFor(
        `message ${messageId} in the Postfix queue`,
        DELIVERY_DEADLINE_MS,
        async () => {
          const found = await ctx.ssh.out(
            `for id in $(postqueue -j | sed -n 's/.*"queue_id": *"\\([0-9A-Za-z]*\\)".*/\\1/p'); do ` +
              `if postcat -hq "$id" 2>/dev/null | grep -qF '${messageId}'; then postcat -hq "$id"; postsuper -d "$id" >/dev/null 2>&1; fi; done`,
          );
          return found === "" ? undefined : found.replace(/\r?\n[ \t]+/g, " ");
        },
        500,
      );
      const dkim = headers.match(/^DKIM-Signature:.*$/im)?.[0] ?? "";
      if (!/\bd=/.test(dkim) || !dkim.includes(`d=${ctx.domain};`) || !dkim.includes(`s=${DKIM_SELECTOR};`)) {
        throw new Error(
          `no DKIM signature with d=${ctx.domain} s=${DKIM_SELECTOR}; queued headers:\n${headers}`,
        );
      }
    },
  },
];
