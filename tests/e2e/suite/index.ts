// The online suite in run order: idempotence first (nothing else has touched the server yet), the option
// change and daemon kills late (they restart services the other tests use), then what Prometheus saw of the
// relay's metrics over the whole suite, `pulumi destroy` last.
import { accounts } from "./accounts";
import { optionChange, sameConfig } from "./idempotence";
import { deltachat } from "./deltachat";
import { turn } from "./turn";
import { destroy } from "./destroy";
import { expiry } from "./expiry";
import { inbound } from "./inbound";
import { invites } from "./invites";
import { irohDownload } from "./iroh";
import { journal } from "./journal";
import { mail } from "./mail";
import { metrics } from "./metrics";
import { push } from "./push";
import { reboot } from "./reboot";
import { active, hostState, restart } from "./services";
import type { E2eTest } from "./types";
import { web } from "./web";

export const SUITE: ReadonlyArray<readonly [string, readonly E2eTest[]]> = [
  ["idempotence: same config", sameConfig],
  ["services", active],
  ["host state", hostState],
  ["accounts", accounts],
  ["mail", mail],
  ["inbound and TLS", inbound],
  ["port 443 and web", web],
  ["metadata and push", push],
  ["Delta Chat", deltachat],
  ["calls: TURN", turn],
  ["logs", journal],
  ["invite tokens", invites],
  ["iroh-relay download", irohDownload],
  ["quota and expiry", expiry],
  ["services: restart", restart],
  ["reboot", reboot],
  ["idempotence: one option changed", optionChange],
  ["metrics: Prometheus", metrics],
  ["pulumi destroy", destroy],
];
