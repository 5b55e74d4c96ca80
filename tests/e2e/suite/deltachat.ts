// As a user would with Delta Chat: two profiles made from the relay's own onboarding link, a Secure-Join (QR
// invite) between them, then messages and read receipts both ways. In self-signed mode the relay's onboarding
// link is the `dclogin:` URL that POST /new returns (it tells the client to accept the certificate).
import { randomUUID } from "node:crypto";
import { https } from "./clients";
import { DcClient } from "./dcclient";
import { MAIL } from "./mail";
import type { E2eTest, SuiteContext } from "./types";

const NEEDS = [...MAIL, "service:nginx.service"];

/** The onboarding link of a self-signed relay: POST /new[?TOKEN] -> dclogin_url. */
export async function onboardingLink(ctx: SuiteContext, query = ""): Promise<string> {
  const reply = await https(ctx, "POST", `/new${query}`);
  if (reply.status !== 200) throw new Error(`POST /new${query}: status ${reply.status}`);
  const body = JSON.parse(reply.body) as { dclogin_url?: string };
  if (!body.dclogin_url?.startsWith("dclogin:"))
    throw new Error(`POST /new${query}: no dclogin_url in ${reply.body}`);
  return body.dclogin_url;
}

export async function withCore(ctx: SuiteContext, f: (core: DcClient) => Promise<void>) {
  const core = DcClient.start(ctx);
  try {
    await f(core);
  } catch (e) {
    const tail = core.stderr.slice(-15).join("\n");
    if (tail && e instanceof Error) e.message += `\ncore stderr (last lines):\n${tail}`;
    throw e;
  } finally {
    await core.close();
  }
}

export const deltachat: E2eTest[] = [
  {
    name: "two Delta Chat profiles from the relay's link complete a Secure-Join and exchange messages and read receipts both ways",
    needs: NEEDS,
    run: (ctx) =>
      withCore(ctx, async (core) => {
        const rpc = core.dc.rpc;
        const alice = await core.profile(await onboardingLink(ctx));
        const bob = await core.profile(await onboardingLink(ctx));
        const t = Date.now();
        const qr = await rpc.getChatSecurejoinQrCode(alice, null);
        const inviterDone = core.event(alice, "SecurejoinInviterProgress", (e) => e.progress === 1000);
        const joinerDone = core.event(bob, "SecurejoinJoinerProgress", (e) => e.progress === 1000);
        const bobChat = await rpc.secureJoin(bob, qr);
        const aliceChat = (await inviterDone).chatId;
        await joinerDone;
        ctx.time("Secure-Join", (Date.now() - t) / 1000);

        // Bob -> Alice, Alice reads it, Bob sees the read receipt; then the same the other way.
        for (const [from, fromChat, to] of [
          [bob, bobChat, alice],
          [alice, aliceChat, bob],
        ] as const) {
          const text = `hello ${randomUUID()}`;
          const arrived = core.incomingText(to, text);
          const sent = await rpc.miscSendTextMessage(from, fromChat, text);
          const received = await arrived;
          const msg = await rpc.getMessage(to, received);
          if (!msg.showPadlock) throw new Error(`the message to profile ${to} is not end-to-end encrypted`);
          const receipt = core.event(from, "MsgRead", (e) => e.msgId === sent);
          await rpc.markseenMsgs(to, [received]);
          await receipt;
        }
      }),
  },
];
