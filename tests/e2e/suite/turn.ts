// Calls: the relay's TURN server (coturn) as Delta Chat uses it. The real core fetches its ICE servers from the
// relay (IMAP METADATA /shared/vendor/deltachat/turn) and must list ours with credentials that work: an
// allocation with them succeeds from the test's side of the link over UDP and TCP, and forged or expired ones
// are refused. Then TURN is switched off and on again: coturn stops, iroh-relay takes STUN back, the turn entry
// is gone, and the switch back restores everything.
import { PATHS, turnRelayRange } from "../../../core/plan/facts";
import { STUN_PORT } from "../../../core/server";
import { turnCredentials, TURN_CREDENTIAL_LIFETIME_S } from "../../../daemons/metadata/turn";
import { allocate, stunBinding, type TurnServer } from "../../../tools/check/turn";
import { waitFor } from "../proc";
import { newCredentials, rawImap } from "./clients";
import { onboardingLink, withCore } from "./deltachat";
import { MAIL } from "./mail";
import type { E2eTest, SuiteContext } from "./types";

const NEEDS = [...MAIL, "service:coturn.service", "once:turn-secret"];
const TURN_ENTRY = "/shared/vendor/deltachat/turn";

interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** The ICE server the core built from our turn entry: a turn: URL on the relay's address or name, port 3478. */
function ours(ctx: SuiteContext, servers: IceServer[]): IceServer | undefined {
  const hosts = [ctx.addr, ctx.domain];
  return servers.find((s) =>
    [s.urls].flat().some((u) => hosts.some((h) => u === `turn:${h}:3478` || u.startsWith(`turn:${h}:3478?`))),
  );
}

/** The deployed relay's coturn over UDP, as clients reach it. */
function relayTurn(ctx: SuiteContext): TurnServer {
  return { host: ctx.addr, port: STUN_PORT, transport: "udp" };
}

async function turnEntry(ctx: SuiteContext): Promise<string> {
  const account = newCredentials(ctx);
  const imap = await rawImap(ctx);
  try {
    await imap.command(`LOGIN ${account.addr} ${account.password}`);
    return await imap.command(`GETMETADATA "" ${TURN_ENTRY}`);
  } finally {
    imap.close();
  }
}

export const turn: E2eTest[] = [
  {
    name: "two Delta Chat profiles list the relay's TURN server among their ICE servers, and its credentials get an allocation over UDP and TCP",
    needs: NEEDS,
    run: (ctx) =>
      withCore(ctx, async (core) => {
        const udp = relayTurn(ctx);
        const range = turnRelayRange(ctx.first.config);
        for (const name of ["alice", "bob"]) {
          const profile = await core.profile(await onboardingLink(ctx));
          // The core reads the entry when its IMAP connection comes up; poll until it has.
          const server = await waitFor(
            `${name}'s ICE servers to list the relay's TURN server`,
            60_000,
            async () => ours(ctx, JSON.parse(await core.dc.rpc.iceServers(profile)) as IceServer[]),
          );
          if (!server.username || !server.credential)
            throw new Error(`${name}: TURN server without credentials`);
          const expiry = Number(server.username) - Date.now() / 1000;
          if (!(expiry > TURN_CREDENTIAL_LIFETIME_S - 600 && expiry <= TURN_CREDENTIAL_LIFETIME_S + 60))
            throw new Error(
              `${name}: credentials expire in ${expiry} s, want about ${TURN_CREDENTIAL_LIFETIME_S}`,
            );
          const creds = { username: server.username, password: server.credential };
          for (const transport of ["udp", "tcp"] as const) {
            const result = await allocate({ ...udp, transport }, creds);
            if (!result.ok)
              throw new Error(
                `${name}: allocation over ${transport} refused: ${result.code} ${result.reason}`,
              );
            const colon = result.relayed.lastIndexOf(":");
            const [host, port] = [result.relayed.slice(0, colon), Number(result.relayed.slice(colon + 1))];
            if (host !== ctx.addr || port < range.first || port > range.last)
              throw new Error(
                `${name}: relayed address ${result.relayed} is not ${ctx.addr} in ${range.first}-${range.last}`,
              );
          }
          const forged = await allocate(udp, { ...creds, password: turnCredentials("forged").password });
          if (forged.ok || forged.code !== 401)
            throw new Error(`${name}: a forged password got ${JSON.stringify(forged)}`);
        }
      }),
  },
  {
    name: "credentials made with the server's secret but expired are refused, and the secret stays root-only and out of every log",
    needs: NEEDS,
    async run(ctx) {
      const udp = relayTurn(ctx);
      if ((await ctx.ssh.out(`stat -c '%U %a' ${PATHS.turnSecret}`)).trim() !== "root 600")
        throw new Error(`${PATHS.turnSecret} is not root-only`);
      // Only this test reads the secret, over root SSH, to make credentials that expired an hour ago.
      const secret = (await ctx.ssh.out(`cat ${PATHS.turnSecret}`)).trim();
      const expired = turnCredentials(secret, Math.floor(Date.now() / 1000) - 3600, 0);
      const refused = await allocate(udp, expired);
      if (refused.ok || refused.code !== 401)
        throw new Error(`expired credentials got ${JSON.stringify(refused)}`);
      // The same secret with a future expiry works: the refusal above was the expiry.
      if (!(await allocate(udp, turnCredentials(secret))).ok)
        throw new Error("fresh credentials were refused");
      if (ctx.transcript().includes(secret))
        throw new Error("the TURN secret appears in the Pulumi CLI output");
      const journal = await ctx.ssh.out("journalctl -b -o cat --no-pager");
      if (journal.includes(secret)) throw new Error("the TURN secret appears in the journal");
    },
  },
  {
    name: "turnServer false stops coturn, gives STUN back to iroh-relay and drops the turn entry; true again restores them",
    needs: NEEDS,
    async run(ctx) {
      const udp = relayTurn(ctx);
      await ctx.deploy({ turnServer: false });
      const active = (await ctx.ssh.out("systemctl is-active coturn.service || true")).trim();
      if (active !== "inactive") throw new Error(`coturn.service is ${active} with turnServer false`);
      const without = await turnEntry(ctx);
      if (/turn"? "?[^ ]+:3478:/.test(without))
        throw new Error(`the turn entry is still there: ${without.trim()}`);
      // The stand-in iroh-relay of a testbed without the real build answers no STUN.
      if (ctx.irohReal !== false) await stunBinding(udp);
      await ctx.deploy({});
      if ((await ctx.ssh.out("systemctl is-active coturn.service || true")).trim() !== "active")
        throw new Error("coturn.service is not active again with turnServer true");
      const back = await turnEntry(ctx);
      if (!back.includes(`${ctx.domain}:3478:`))
        throw new Error(`no turn entry after switching back: ${back.trim()}`);
      // coturn answers STUN again, with the address this side of the link sent from.
      const mapped = await stunBinding(udp);
      if (!/^\d+\.\d+\.\d+\.\d+:\d+$/.test(mapped) || mapped.startsWith(`${ctx.addr}:`))
        throw new Error(`STUN binding answered ${mapped}`);
    },
  },
];
