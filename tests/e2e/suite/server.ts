// Reading the server's state over SSH: which steps ran (the plan's run log) and when services last started.
import { RUN_LOG, type Plan } from "../../../core/plan";
import type { SuiteContext } from "./types";

/** Lines of the run log: `<time> <unit id> <hash>`, one per executed step. */
export async function runLog(ctx: SuiteContext): Promise<string[]> {
  const text = await ctx.ssh.out(`cat ${RUN_LOG} 2>/dev/null || true`);
  return text === "" ? [] : text.split("\n");
}

export const loggedIds = (lines: readonly string[]) => lines.map((l) => l.split(" ")[1]);

/** systemd names of the plan's services that should be running. */
export function runningServices(plan: Plan): string[] {
  return plan.units.flatMap((u) => (u.kind === "service" && u.running ? [u.name] : []));
}

/**
 * When each service last entered "active", in systemd's monotonic microseconds: a restart changes it, a reload
 * does not. One SSH round trip for all.
 */
export async function startTimes(ctx: SuiteContext, names: readonly string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const out = await ctx.ssh.out(
    names
      .map((n) => `echo "${n} $(systemctl show -p ActiveEnterTimestampMonotonic --value ${n})"`)
      .join("\n"),
  );
  return new Map(out.split("\n").map((l) => l.split(" ") as [string, string]));
}

export async function mainPid(ctx: SuiteContext, name: string): Promise<number> {
  return Number(await ctx.ssh.out(`systemctl show -p MainPID --value ${name}`));
}
