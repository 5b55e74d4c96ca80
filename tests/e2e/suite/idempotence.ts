// Re-running a deploy on the real server: with the same config nothing runs and nothing restarts; changing one
// option runs exactly the units whose content changed and restarts only the services that depend on them.
import type { Plan } from "../../../components/plan";
import { loggedIds, runLog, runningServices, startTimes } from "./server";
import type { E2eTest, SuiteContext } from "./types";

/** Ids of the steps of `next` that are new or whose hash differs from `prev`: what Pulumi would update. */
function changedSteps(prev: Plan, next: Plan): string[] {
  const before = new Map(prev.steps.map((s) => [s.id, s.hash]));
  return next.steps.filter((s) => before.get(s.id) !== s.hash).map((s) => s.id);
}

/** systemd names of the services whose step restarts them when these steps run (reload-only ones keep running). */
function restartedBy(plan: Plan, ran: readonly string[]): Set<string> {
  const set = new Set(ran);
  const names = plan.units.flatMap((u) =>
    u.kind === "service" &&
    u.running &&
    set.has(u.id) &&
    (u.restartOn.some((r) => set.has(r)) || u.reloadOn.length === 0)
      ? [u.name]
      : [],
  );
  return new Set(names);
}

function expectEqual(what: string, actual: readonly string[], expected: readonly string[]) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected [${expected.join(", ")}], got [${actual.join(", ")}]`);
  }
}

async function deployChecked(
  ctx: SuiteContext,
  overrides: Record<string, number>,
  expectRestarted: (name: string) => boolean,
) {
  const services = runningServices(ctx.first.plan);
  const logBefore = await runLog(ctx);
  const timesBefore = await startTimes(ctx, services);
  const deployed = await ctx.deploy(overrides);
  const appended = loggedIds((await runLog(ctx)).slice(logBefore.length));
  expectEqual("run log lines added by the deploy", appended, deployed.result.ran);
  const timesAfter = await startTimes(ctx, services);
  for (const name of services) {
    const restarted = timesBefore.get(name) !== timesAfter.get(name);
    if (restarted !== expectRestarted(name)) {
      throw new Error(
        `${name} was ${restarted ? "" : "not "}restarted (ActiveEnterTimestampMonotonic ${timesBefore.get(name)} -> ${timesAfter.get(name)})`,
      );
    }
  }
  return deployed;
}

export const sameConfig: E2eTest[] = [
  {
    name: "a second deploy with the same config runs no step and restarts no service",
    async run(ctx) {
      const t = Date.now();
      const deployed = await deployChecked(ctx, {}, () => false);
      ctx.time("no-op deploy", (Date.now() - t) / 1000);
      expectEqual("steps run by the second deploy", deployed.result.ran, []);
    },
  },
];

export const optionChange: E2eTest[] = [
  {
    name: "changing maxUserSendPerMinute runs only the units it touches and restarts only their services",
    async run(ctx) {
      const value = ctx.first.config.maxUserSendPerMinute + 1;
      const next = ctx.planFor({ maxUserSendPerMinute: value });
      const expected = changedSteps(ctx.first.plan, next);
      if (expected.length === 0) throw new Error("no unit of the plan depends on maxUserSendPerMinute");
      // A send-rate change edits configuration files and restarts what reads them; nothing else may run.
      const kinds = new Map(next.steps.map((st) => [st.id, st.kind]));
      const unexpected = expected.filter((id) => kinds.get(id) !== "file" && kinds.get(id) !== "service");
      if (unexpected.length > 0) throw new Error(`changing one option would re-run ${unexpected.join(", ")}`);
      const touched = restartedBy(next, expected);
      const changed = await deployChecked(ctx, { maxUserSendPerMinute: value }, (name) => touched.has(name));
      expectEqual("steps run for the changed option", changed.result.ran, expected);
      // Back to the first config: the same units run again, and the server is as the other tests expect it.
      const back = await deployChecked(ctx, {}, (name) => touched.has(name));
      expectEqual(
        "steps run when changing the option back",
        back.result.ran,
        changedSteps(changed.plan, ctx.first.plan),
      );
    },
  },
];
