// IMAP METADATA as Delta Chat uses it: device tokens are stored per mailbox and accumulate, the iroh relay URL
// is announced, and a new message makes chatmail-metadata post the token to the notification server
// (here the test's own server on the host end of the link).
import { randomUUID } from "node:crypto";
import * as openpgp from "openpgp";
import { irohRelayUrl } from "../../../core/config";
import { waitFor } from "../proc";
import { imapLogin, newCredentials, rawImap, submit } from "./clients";
import { encryptedMessage, MAIL, receive } from "./mail";
import type { E2eTest } from "./types";

const METADATA = MAIL;
const PUSH_DEADLINE_MS = 30_000;

export const push: E2eTest[] = [
  {
    name: "device tokens set with SETMETADATA accumulate and GETMETADATA returns them",
    needs: METADATA,
    async run(ctx) {
      const account = newCredentials(ctx);
      const imap = await rawImap(ctx);
      try {
        await imap.command(`LOGIN ${account.addr} ${account.password}`);
        await imap.command('SETMETADATA INBOX (/private/devicetoken "1111")');
        const first = await imap.command("GETMETADATA INBOX /private/devicetoken");
        if (!/"?1111"?/.test(first)) throw new Error(`GETMETADATA after one token: ${first.trim()}`);
        await imap.command('SETMETADATA INBOX (/private/devicetoken "2222")');
        const both = await imap.command("GETMETADATA INBOX /private/devicetoken");
        if (!both.includes("1111") || !both.includes("2222"))
          throw new Error(`GETMETADATA after two tokens: ${both.trim()}`);
      } finally {
        imap.close();
      }
    },
  },
  {
    name: "GETMETADATA announces the relay's iroh relay URL",
    needs: METADATA,
    async run(ctx) {
      const account = newCredentials(ctx);
      const imap = await rawImap(ctx);
      try {
        await imap.command(`LOGIN ${account.addr} ${account.password}`);
        const reply = await imap.command('GETMETADATA "" /shared/vendor/deltachat/irohrelay');
        const want = irohRelayUrl(ctx.first.config);
        if (!reply.includes(want)) throw new Error(`irohrelay metadata: ${reply.trim()}, want ${want}`);
      } finally {
        imap.close();
      }
    },
  },
  {
    name: "a message to an account with a device token makes the relay post that token to the notification server",
    needs: METADATA,
    async run(ctx) {
      const a = newCredentials(ctx);
      const b = newCredentials(ctx);
      await (await imapLogin(ctx, a)).logout();
      const token = `token-${randomUUID()}`;
      const imap = await rawImap(ctx);
      try {
        await imap.command(`LOGIN ${b.addr} ${b.password}`);
        await imap.command(`SETMETADATA INBOX (/private/devicetoken "${token}")`);
      } finally {
        imap.close();
      }
      const { publicKey } = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ email: b.addr }],
        format: "object",
      });
      const { messageId, raw } = await encryptedMessage(a, b.addr, ctx.domain, "ping", publicKey);
      await submit(ctx, a, 465, { from: a.addr, to: [b.addr] }, raw);
      await receive(ctx, b, messageId);
      await waitFor(
        `a notification carrying ${token} at ${ctx.hostSide.baseUrl}`,
        PUSH_DEADLINE_MS,
        async () => (ctx.hostSide.notifications.some((body) => body.includes(token)) ? true : undefined),
      );
    },
  },
];
