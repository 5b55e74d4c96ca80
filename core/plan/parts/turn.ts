// coturn: the TURN server for Delta Chat calls (docs/relay.md, 'TURN'; chatmail/relay 1.12.0 runs its own
// chatmail-turn instead, cmdeploy/src/cmdeploy/deployers.py TurnDeployer). We take Debian's coturn because it is
// the smaller thing to run safely: a packaged, security-supported server with the TURN REST shared-secret scheme
// built in, where our own would be new network code facing the Internet (docs/decisions.md, 'coturn').
//
// The secret is made on the server once and never leaves it: coturn and chatmaild get copies through systemd's
// LoadCredential=, and the metadata daemon computes fresh credentials from it for each logged-in client.
// coturn also answers STUN on the same port, so the relay's iroh-relay does not (iroh.ts).
import { runsOwnIrohRelay } from "../../config";
import type { PlanContext } from "../context";
import { PATHS, turnRelayRange } from "../facts";
import { q } from "../sh";
import { ids, once, packages, service, templateFile } from "../units";
import type { Unit } from "../types";

/** The unit of chatmail-turn, the TURN server of cmdeploy relays since 1.8.0, which holds UDP 3478. */
export const CMDEPLOY_TURN_UNIT = "turnserver.service";

/**
 * What frees the STUN port before iroh-relay or coturn takes it: cmdeploy's chatmail-turn stopped for good (a
 * no-op on other servers; the prune step removes its files), and without turnServer coturn stopped too (the
 * secret stays for a later switch on). The plan puts this before the iroh part.
 */
export function stunHandover(ctx: PlanContext): Unit[] {
  const cmdeployTurn = service(CMDEPLOY_TURN_UNIT, { enabled: false, running: false });
  if (ctx.config.turnServer) return [cmdeployTurn];
  return [cmdeployTurn, service("coturn.service", { enabled: false, running: false })];
}

/** With turnServer: coturn configured and running, after the iroh part (whose iroh-relay frees the STUN port). */
export function turn(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  if (!config.turnServer) return [];
  const range = turnRelayRange(config);
  const vars = { turnRelayFirst: range.first, turnRelayLast: range.last };
  const pkg = packages("coturn", ["coturn"]);
  const conf = templateFile(ctx, PATHS.turnConfig, "turn/turnserver.conf.njk", { vars });
  const dropIn = templateFile(
    ctx,
    "/etc/systemd/system/coturn.service.d/10-chatmail.conf",
    "turn/10-chatmail.conf.njk",
  );
  return [
    pkg,
    conf,
    dropIn,
    turnSecret(),
    service("coturn.service", {
      restartOn: ids([conf, dropIn]),
      // iroh-relay frees the STUN port when it restarts without STUN (iroh.ts).
      after: [
        "once:turn-secret",
        `service:${CMDEPLOY_TURN_UNIT}`,
        ...(runsOwnIrohRelay(config) ? ["service:iroh-relay.service"] : []),
      ],
    }),
  ];
}

/** 32 random bytes, hex: made once, root-only (0600); coturn and chatmaild read copies (LoadCredential=). */
function turnSecret(): Unit {
  const path = q(PATHS.turnSecret);
  return once(
    "turn-secret",
    "TURN shared secret",
    PATHS.turnSecret,
    // The folder stays readable: it also holds coturn's configuration and other files services read.
    `install -d -m 0755 /etc/chatmail\numask 077\nopenssl rand -hex 32 >${path}.tmp\nmv ${path}.tmp ${path}`,
  );
}
