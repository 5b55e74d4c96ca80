// planRelay: the whole relay as data. Parts are listed in deploy order; within a phase their units keep this
// order, and services that must start after another say so (`after`): dovecot before postfix, the TLS
// certificate before the services that use it. The prune unit comes last: it removes what the parts no
// longer put on the server.
import type { RelayConfig } from "../config";
import { templateVars, type Assets, type PlanContext } from "./context";
import { makeRenderer } from "./render";
import { prune } from "./prune";
import { planOf } from "./steps";
import type { Plan } from "./types";
import { base } from "./parts/base";
import { daemons, metricsFacts } from "./parts/daemons";
import { dovecot } from "./parts/dovecot";
import { iroh } from "./parts/iroh";
import { nginx } from "./parts/nginx";
import { opendkim } from "./parts/opendkim";
import { postfix } from "./parts/postfix";
import { preflight } from "./parts/preflight";
import { tls } from "./parts/tls";
import { stunHandover, turn } from "./parts/turn";
import { unbound } from "./parts/unbound";
import { website } from "./parts/website";

const PARTS = [
  preflight,
  base,
  unbound,
  tls,
  stunHandover,
  iroh,
  turn,
  daemons,
  opendkim,
  dovecot,
  postfix,
  nginx,
  website,
];

export function planRelay(config: RelayConfig, assets: Assets): Plan {
  const warnings: string[] = [];
  const ctx: PlanContext = {
    config,
    assets,
    render: makeRenderer(assets.templates),
    vars: templateVars(config),
    warn: (message) => warnings.push(message),
  };
  const parts = PARTS.flatMap((part) => part(ctx));
  const units = [...parts, ...metricsFacts(ctx, parts)];
  return planOf([...units, prune(units, config)], warnings);
}

export type { Assets } from "./context";
export type { Plan, Step, Unit } from "./types";
export { RUN_LOG, SECRET_HASH_WORD } from "./steps";
export { MANIFEST } from "./prune";
