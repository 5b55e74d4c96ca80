// Re-running `pulumi up` on the real server: with the same config nothing runs and nothing restarts
// (`--expect-no-changes`); changing one option shows exactly that file's lines in `pulumi preview --diff`, runs
// exactly the units whose content changed and restarts only the services that depend on them.
import type { Plan } from "../../../core/plan";
import { loggedIds, runLog, runningServices, startTimes } from "./server";
import type { Deployed, E2eTest, SuiteContext } from "./types";

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

/** The lines under `pulumi:pulumi:Stack (...)` in the Diagnostics section of a CLI run's output. */
function stackDiagnostics(output: string): string[] {
  const lines = output.split("\n");
  const start = lines.findIndex(
    (l, i) => /^\s*pulumi:pulumi:Stack \(/.test(l) && lines.slice(0, i).some((p) => /^Diagnostics:/.test(p)),
  );
  if (start < 0) return [];
  const indent = lines[start].search(/\S/);
  const end = lines.findIndex((l, i) => i > start && l.trim() !== "" && l.search(/\S/) <= indent);
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Lines of `text` that `other` lacks, trimmed. */
const linesMissingFrom = (text: string, other: string) => {
  const have = new Set(other.split("\n"));
  return text.split("\n").filter((l) => !have.has(l) && l.trim() !== "");
};

/**
 * `pulumi preview --diff` names exactly the steps that would run, and shows each changed file's removed and
 * added lines, and no other line of a file with a - or + in front.
 */
function expectPreviewShows(output: string, prev: Plan, next: Plan, expected: readonly string[]) {
  // A resource shows as `+- command:remote:Command: (replace)` (or `~ ... (update)`), its URN a line or two below.
  const lines = output.split("\n");
  const marked = new Set<string>();
  lines.forEach((line, i) => {
    if (!/^\s*(\+-|~|\+|-)\s*command:remote:Command: \((replace|update|create)\)/.test(line)) return;
    const urn = lines.slice(i + 1, i + 4).find((l) => l.includes("[urn="));
    const name = urn
      ?.trim()
      .replace(/^\[urn=.*::/, "")
      .replace(/\]$/, "");
    if (name?.startsWith("relay-config-")) marked.add(name.slice("relay-config-".length));
  });
  const shown = [...marked].filter((id) => next.steps.some((s) => s.id === id)).sort();
  expectEqual("steps that pulumi preview --diff would run", shown, expected);
  const before = new Map(prev.steps.map((s) => [s.id, s]));
  for (const id of expected) {
    const step = next.steps.find((s) => s.id === id)!;
    const old = before.get(id);
    if (step.kind !== "file" || !old) continue;
    for (const [sign, line] of [
      ...linesMissingFrom(old.stdin, step.stdin).map((l) => ["-", l] as const),
      ...linesMissingFrom(step.stdin, old.stdin).map((l) => ["+", l] as const),
    ]) {
      const re = new RegExp(`^\\s*${sign === "-" ? "-" : "\\+"}\\s*${escapeRegExp(line.trim())}\\s*$`, "m");
      if (!re.test(output))
        throw new Error(`pulumi preview --diff does not show "${sign} ${line}" of ${id}:\n${output}`);
    }
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Compares as sets: the engine runs steps whose dependencies are met in parallel, so their order in the run log
 * may differ from the plan's (the plan's dependencies, not its list order, are what must hold).
 */
function expectEqual(what: string, actual: readonly string[], expected: readonly string[]) {
  if (JSON.stringify([...actual].sort()) !== JSON.stringify([...expected].sort())) {
    throw new Error(`${what}: expected [${expected.join(", ")}], got [${actual.join(", ")}]`);
  }
}

async function deployChecked(
  ctx: SuiteContext,
  overrides: Record<string, number>,
  expectRestarted: (name: string) => boolean,
  deploy: () => Promise<Deployed> = () => ctx.deploy(overrides),
) {
  const services = runningServices(ctx.first.plan);
  const logBefore = await runLog(ctx);
  const timesBefore = await startTimes(ctx, services);
  const deployed = await deploy();
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
    name: "the stack's outputs hold the relay's facts and nothing empty; the stack itself raised no warning",
    async run(ctx) {
      const outputs = await ctx.stack.outputs();
      const expected = ["alertRules", "dcaccountLink", "ipv4", "ipv6", "webUrl", "zoneFile"];
      expectEqual("stack outputs (no invite tokens)", Object.keys(outputs), expected);
      if (outputs.ipv4 !== ctx.target.address) throw new Error(`ipv4 output is ${String(outputs.ipv4)}`);
      // hostAddress is the IPv4 address; the IPv6 one is read back from the server (its global address).
      if (outputs.ipv6 !== ctx.netns.containerAddr6)
        throw new Error(`ipv6 output is ${String(outputs.ipv6)}`);
      const addressRecords = [...String(outputs.zoneFile).matchAll(/^\S+\s+\d+ IN (A|AAAA)\s+(\S+)$/gm)].map(
        (m) => `${m[1]} ${m[2]}`,
      );
      expectEqual("the zoneFile's address records", addressRecords, [
        `A ${ctx.target.address}`,
        `AAAA ${ctx.netns.containerAddr6}`,
      ]);
      if (!String(outputs.zoneFile).includes("v=DKIM1"))
        throw new Error("the zoneFile output has no DKIM record read back from the server");
      // The stack's own warnings, from the Diagnostics section (an output without value warns there); the
      // testbed's stand-in plugin taken from PATH is announced there too.
      const warnings = stackDiagnostics(ctx.first.result.output).filter(
        (l) => /warning:/.test(l) && !/pulumi-resource-command from \$PATH/.test(l),
      );
      if (warnings.length > 0) throw new Error(`the first pulumi up warned:\n${warnings.join("\n")}`);
    },
  },
  {
    name: "the first pulumi up ran every step once, after each step it depends on",
    async run(ctx) {
      const order = loggedIds(await runLog(ctx));
      const position = new Map(order.map((id, i) => [id, i]));
      expectEqual(
        "steps in the run log after the first pulumi up",
        order,
        ctx.first.plan.steps.map((s) => s.id),
      );
      const early = ctx.first.plan.steps.flatMap((s) =>
        s.dependsOn
          .filter((d) => position.get(d)! > position.get(s.id)!)
          .map((d) => `${s.id} ran before ${d}`),
      );
      if (early.length > 0) throw new Error(`order broken:\n  ${early.join("\n  ")}`);
    },
  },
  {
    name: "a second pulumi up --expect-no-changes with the same config runs nothing on the server",
    async run(ctx) {
      const preview = await ctx.stack.preview(["--expect-no-changes"]);
      ctx.time("no-op pulumi preview", preview.seconds);
      const deployed = await deployChecked(
        ctx,
        {},
        () => false,
        async () => ({
          ...ctx.first,
          result: await ctx.stack.up(["--expect-no-changes", "--skip-preview"]),
        }),
      );
      ctx.time("no-op pulumi up", deployed.result.seconds);
      expectEqual("steps run by the second pulumi up", deployed.result.ran, []);
      expectEqual("resources changed by the second pulumi up", deployed.result.changes, []);
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
      await ctx.stack.configureRelay(ctx.optionsFor({ maxUserSendPerMinute: value }), ctx.target);
      const preview = await ctx.stack.preview();
      expectPreviewShows(preview.output, ctx.first.plan, next, expected);
      const changed = await deployChecked(ctx, { maxUserSendPerMinute: value }, (name) => touched.has(name));
      ctx.time("single-change pulumi up", changed.result.seconds);
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
