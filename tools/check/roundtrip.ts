// A live round trip, as a Delta Chat client makes it: log in over IMAP (the first login creates the account),
// submit an OpenPGP-encrypted message to itself on 465, wait for it in the INBOX, delete it. The account is one
// made for checking: derived from a stack secret, so every check logs into the same account and none pile up.
import { createHmac, randomUUID } from "node:crypto";
import { ImapFlow } from "imapflow";
import { createTransport } from "nodemailer";
import * as openpgp from "openpgp";
import type { RelayConfig } from "../../core/config";
import { httpsGet } from "./net";
import { fail, ok, type Row } from "./rows";

export interface Account {
  readonly addr: string;
  readonly password: string;
}

const DELIVERY_DEADLINE_MS = 60_000;
const clamp = (n: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, n));

/**
 * The check account of a relay: its local part and password are HMACs of `secret` (hex, which every username
 * and password rule allows), within the relay's length limits; with invite tokens the password starts with the
 * first token, as at every invited first login.
 */
export function checkAccount(config: RelayConfig, secret: string): Account {
  const mac = (label: string) =>
    createHmac("sha256", secret).update(`chatmail-check ${label} ${config.mailDomain}`).digest("hex");
  const local = mac("local").slice(0, clamp(12, config.usernameMinLength, config.usernameMaxLength));
  const prefix = config.inviteTokens[0] ?? "";
  const length = clamp(32, config.passwordMinLength, config.passwordMaxLength) - prefix.length;
  return {
    addr: `${local}@${config.mailDomain}`,
    password: prefix + mac("password").slice(0, Math.max(length, 8)),
  };
}

/** An account from the relay's /new, as a QR code scan makes one. */
export async function newAccount(config: RelayConfig, addr: string, query = ""): Promise<Account> {
  const res = await httpsGet({
    addr,
    servername: config.mailDomain,
    path: `/new${query ? `?${query}` : ""}`,
    method: "POST",
  });
  if (res.status !== 200) throw new Error(`POST /new answered ${res.status}: ${res.body.trim()}`);
  const { email, password } = JSON.parse(res.body) as { email: string; password: string };
  return { addr: email, password };
}

/** RFC 3156 PGP/MIME, the only kind of message the relay passes between its users. */
async function encryptedToSelf(account: Account, text: string) {
  const { publicKey } = await openpgp.generateKey({
    type: "curve25519",
    userIDs: [{ email: account.addr }],
    format: "object",
  });
  const armored = await openpgp.encrypt({
    message: await openpgp.createMessage({ text }),
    encryptionKeys: publicKey,
  });
  const boundary = `b${randomUUID()}`;
  const domain = account.addr.split("@")[1];
  const messageId = `<${randomUUID()}@${domain}>`;
  const raw = [
    `From: <${account.addr}>`,
    `To: <${account.addr}>`,
    "Subject: ...",
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: ${messageId}`,
    "MIME-Version: 1.0",
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    "Content-Type: application/pgp-encrypted",
    "",
    "Version: 1",
    "",
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    "",
    String(armored).trimEnd(),
    "",
    `--${boundary}--`,
    "",
  ].join("\r\n");
  return { messageId, raw };
}

export async function roundTripRow(
  config: RelayConfig,
  addr: string,
  account: () => Promise<Account>,
): Promise<Row> {
  const check = "mail round trip";
  const tls = { servername: config.mailDomain, rejectUnauthorized: config.tlsMode !== "self-signed" };
  let stage = "account";
  let imap: ImapFlow | undefined;
  try {
    const acc = await account();
    stage = "IMAP login";
    imap = new ImapFlow({
      host: addr,
      port: 993,
      secure: true,
      servername: config.mailDomain,
      auth: { user: acc.addr, pass: acc.password },
      tls,
      logger: false,
      disableAutoIdle: true,
    });
    imap.on("error", () => {});
    await imap.connect();
    await imap.mailboxOpen("INBOX");
    stage = "submission on 465";
    const { messageId, raw } = await encryptedToSelf(acc, `npm run check ${new Date().toISOString()}`);
    const started = Date.now();
    const transport = createTransport({
      host: addr,
      port: 465,
      secure: true,
      auth: { user: acc.addr, pass: acc.password },
      tls,
      connectionTimeout: 10_000,
    });
    try {
      await transport.sendMail({ envelope: { from: acc.addr, to: [acc.addr] }, raw });
    } finally {
      transport.close();
    }
    stage = "delivery to the INBOX";
    let uids: number[] = [];
    while (uids.length === 0) {
      if (Date.now() - started > DELIVERY_DEADLINE_MS)
        throw new Error(`not in the INBOX after ${DELIVERY_DEADLINE_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 250));
      await imap.noop();
      uids = (await imap.search({ header: { "message-id": messageId } }, { uid: true })) || [];
    }
    const seconds = (Date.now() - started) / 1000;
    stage = "deleting the message";
    await imap.messageDelete(uids, { uid: true });
    return ok("roundtrip", check, `${acc.addr}: sent, received and deleted in ${seconds.toFixed(2)} s`);
  } catch (e) {
    const err = e as Error & { responseText?: string; response?: string };
    const why = [err.message, err.responseText ?? err.response].filter(Boolean).join(": ");
    return fail(
      "roundtrip",
      check,
      `${stage}: ${why}`,
      "See the server rows above and `journalctl -u postfix -u dovecot -u chatmaild` on the server.",
    );
  } finally {
    await imap?.logout().catch(() => {});
  }
}
