// What the continuity paths check on whichever server holds the relay: the prepared accounts log in with their
// old passwords and find their mail, device tokens and the DKIM key are the old ones, and the server serves the
// same certificate. Clients connect to one test server at a time through a SuiteContext-shaped view of it.
import { createHash, randomInt, randomUUID } from "node:crypto";
import * as openpgp from "openpgp";
import { READ_BACK, tlsPaths } from "../../../core/plan/facts";
import type { RelayConfig } from "../../../core/config";
import { imapLogin, rawImap, submit, type Account } from "../suite/clients";
import { encryptedMessage } from "../suite/mail";
import type { SuiteContext } from "../suite/types";
import type { TestServer } from "../testServer";
import { TEST_DOMAIN } from "../config";

export interface PreparedAccount extends Account {
  /** The Message-ID of each message the account had before the change. */
  readonly messageIds: string[];
  readonly deviceToken: string;
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const random = (n: number) => Array.from({ length: n }, () => ALPHABET[randomInt(ALPHABET.length)]).join("");

/** A plain message as it lies in a maildir (the relay only refuses cleartext at submission, not in storage). */
function storedMessage(to: string, messageId: string): string {
  return [
    `From: <old-peer@example.net>`,
    `To: <${to}>`,
    `Subject: [...]`,
    `Date: Mon, 02 Nov 2026 10:00:00 +0000`,
    `Message-ID: ${messageId}`,
    `MIME-Version: 1.0`,
    `Content-Type: text/plain; charset=utf-8`,
    ``,
    `kept across the change ${messageId}`,
    ``,
  ].join("\r\n");
}

/** Accounts as a cmdeploy relay's users left them: an address, a password, two messages and a device token. */
export function preparedAccounts(count: number): Array<PreparedAccount & { messages: string[] }> {
  return Array.from({ length: count }, (_, i) => {
    const address = `old${i}${random(6)}@${TEST_DOMAIN}`;
    const messageIds = [1, 2].map(() => `<${randomUUID()}@example.net>`);
    return {
      addr: address,
      password: random(24),
      messageIds,
      messages: messageIds.map((id) => storedMessage(address, id)),
      deviceToken: `token-${random(16)}`,
    };
  });
}

/** The view of one test server that the suite's client helpers take. */
export function clientView(server: TestServer, config: RelayConfig): SuiteContext {
  let cert: string | undefined;
  return {
    addr: server.netns.containerAddr,
    domain: TEST_DOMAIN,
    async caCert() {
      cert ??= await server.ssh.out(`cat ${tlsPaths(config).cert}`);
      return cert;
    },
  } as SuiteContext;
}

/** Message-IDs in the account's INBOX. */
async function inboxIds(ctx: SuiteContext, account: Account): Promise<Set<string>> {
  const client = await imapLogin(ctx, account);
  try {
    await client.mailboxOpen("INBOX");
    const ids = new Set<string>();
    for await (const msg of client.fetch("1:*", { envelope: true })) {
      if (msg.envelope?.messageId) ids.add(msg.envelope.messageId);
    }
    return ids;
  } finally {
    await client.logout();
  }
}

/**
 * Every prepared account logs in with its old password, finds each of its messages (and `extra` ones, by
 * account), and GETMETADATA returns its old device token. Throws naming the first account that does not.
 */
export async function accountsIntact(
  ctx: SuiteContext,
  accounts: readonly PreparedAccount[],
  extra: ReadonlyMap<string, readonly string[]> = new Map(),
): Promise<void> {
  for (const account of accounts) {
    const ids = await inboxIds(ctx, account);
    const want = [...account.messageIds, ...(extra.get(account.addr) ?? [])];
    const missing = want.filter((id) => !ids.has(id));
    if (missing.length > 0)
      throw new Error(`${account.addr}: ${missing.length} of ${want.length} messages missing: ${missing}`);
    const imap = await rawImap(ctx);
    try {
      await imap.command(`LOGIN ${account.addr} ${account.password}`);
      const reply = await imap.command("GETMETADATA INBOX /private/devicetoken");
      if (!reply.includes(account.deviceToken))
        throw new Error(`${account.addr}: device token lost; GETMETADATA says ${reply.trim()}`);
    } finally {
      imap.close();
    }
  }
}

/** The DKIM public key on the server, as the stack reads it back. */
export const dkimKey = (server: TestServer) => server.ssh.out(READ_BACK.dkimPublicKey);

/** The DKIM record's key in a zone file, or undefined. */
export function zoneDkimKey(zoneFile: string): string | undefined {
  const line = zoneFile.split("\n").find((l) => /^opendkim\._domainkey\b/.test(l));
  return line
    ?.match(/"[^"]*"/g)
    ?.map((s) => s.slice(1, -1))
    .join("")
    .match(/p=([A-Za-z0-9+/=]+)/)?.[1];
}

/** sha256 of the certificate file the relay serves. */
export async function certFingerprint(server: TestServer, config: RelayConfig): Promise<string> {
  const pem = await server.ssh.out(`cat ${tlsPaths(config).cert}`);
  return createHash("sha256").update(pem).digest("hex");
}

/** Sends an encrypted message from one account to another through the server; resolves once it was accepted. */
export async function sendEncrypted(ctx: SuiteContext, from: Account, to: Account): Promise<string> {
  const { publicKey } = await openpgp.generateKey({
    type: "curve25519",
    userIDs: [{ email: to.addr }],
    format: "object",
  });
  const { messageId, raw } = await encryptedMessage(
    from,
    to.addr,
    ctx.domain,
    "sent before the switch",
    publicKey,
  );
  await submit(ctx, from, 465, { from: from.addr, to: [to.addr] }, raw);
  return messageId;
}
