// The committed ceilings of `systemd-analyze security` exposure scores (unit-security.json, unit -> highest
// allowed score; docs/hardening.md) and the parsing of the tool's verdict line. Used by the online check on the
// booted server (services.ts) and by the offline one of the plan tests (tests/plan/unit-security.test.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Plan } from "../../../core/plan";

/** Unit name -> the highest exposure score it may have (0 safe ... 10 unsafe). */
export function unitSecurityCeilings(): Record<string, number> {
  return JSON.parse(readFileSync(join(__dirname, "unit-security.json"), "utf8")) as Record<string, number>;
}

/** The score of `systemd-analyze security UNIT`'s last line ("Overall exposure level for X: 1.2 OK"). */
export function exposureScore(output: string, unit: string): number {
  const match = new RegExp(`Overall exposure level for ${unit.replace(/[.@]/g, "\\$&")}: (\\d+\\.\\d+)`).exec(
    output,
  );
  if (!match)
    throw new Error(`systemd-analyze security ${unit}: no exposure level in ${JSON.stringify(output)}`);
  return Number(match[1]);
}

/** The service units the plan writes in full (not drop-ins for Debian's units), by name. */
export function ownServiceUnits(plan: Plan): string[] {
  return plan.units.flatMap((u) => {
    const match = u.kind === "file" ? /^\/etc\/systemd\/system\/([^/]+\.service)$/.exec(u.path) : null;
    return match ? [match[1]] : [];
  });
}
