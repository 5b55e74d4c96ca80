// iroh-relay: helps Delta Chat devices reach each other for realtime webxdc apps (docs/relay.md, 'iroh-relay';
// version 0.35.0 as chatmail/relay 1.12.0 installs it, IrohDeployer in cmdeploy/src/cmdeploy/deployers.py). Its
// HTTP side listens on loopback only, behind nginx's /relay, /ping and /generate_204 (cmdeploy bound it on all
// interfaces); STUN on UDP 3478 is public, answered by coturn with turnServer (turn.ts) and by iroh-relay
// without it. With irohRelay set the relay advertises that one instead and runs none
// of its own.
import type { PlanContext } from "../context";
import { PATHS, PORTS, USERS } from "../facts";
import { download, ids, service, templateFile, user } from "../units";
import { CMDEPLOY_TURN_UNIT } from "./turn";
import type { Unit } from "../types";

export function iroh(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  if (config.irohRelay !== undefined) {
    // A relay switched to an external iroh relay stops its own (a no-op where there never was one).
    return [service("iroh-relay.service", { enabled: false, running: false })];
  }
  const vars = {
    irohHttpBind: `127.0.0.1:${PORTS.irohRelayHttp}`,
    irohStunBind: config.disableIpv6 ? `0.0.0.0:${PORTS.stun}` : `[::]:${PORTS.stun}`,
  };
  const binary = download(
    PATHS.irohRelayBinary,
    config.irohRelayDownloadUrl,
    "./iroh-relay",
    config.irohRelaySha256,
  );
  const toml = templateFile(ctx, "/etc/iroh-relay.toml", "iroh/iroh-relay.toml.njk", { vars });
  const unit = templateFile(ctx, "/etc/systemd/system/iroh-relay.service", "iroh/iroh-relay.service.njk");
  return [
    user(USERS.iroh, { home: "/var/lib/iroh-relay" }),
    binary,
    toml,
    unit,
    // A new binary (new sha256) restarts it too, which cmdeploy 1.7.0 forgot.
    // Without turnServer it binds the STUN port, so coturn and cmdeploy's chatmail-turn must have let go of it.
    service("iroh-relay.service", {
      restartOn: ids([binary, toml, unit]),
      after: config.turnServer ? [] : [`service:${CMDEPLOY_TURN_UNIT}`, "service:coturn.service"],
    }),
  ];
}
