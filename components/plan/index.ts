// planRelay: the whole relay as data. Parts are listed in deploy order; within a phase their units keep this
// order (dovecot before postfix, TLS before the services that use it).
import type { RelayConfig } from "../config";
import { templateVars, type Assets, type PlanContext } from "./context";
import { makeRenderer } from "./render";
import { planOf } from "./steps";
import type { Plan } from "./types";
import { postfix } from "./parts/postfix";

const PARTS = [postfix];

export function planRelay(config: RelayConfig, assets: Assets): Plan {
  const ctx: PlanContext = { config, assets, render: makeRenderer(assets.templates), vars: templateVars(config) };
  return planOf(PARTS.flatMap((part) => part(ctx)));
}

export type { Assets } from "./context";
export type { Plan, Step, Unit } from "./types";
export { RUN_LOG } from "./steps";
