// `npm run fleet -- preview|up|outputs|check`: one command over many relays, one stack each, through Pulumi's
// Automation API. Each engine event is one line prefixed with its stack; the run ends with one table (or --json)
// and exits 0 only when no relay failed. docs/fleet.md describes the options and the fleet file.
import { join } from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { parseFleetArgs, USAGE, UsageError, type FleetOptions } from "./fleet/args";
import { runPool } from "./fleet/pool";
import { errorLine, runStack } from "./fleet/run";
import { resolveStacks, type StackTarget } from "./fleet/stacks";
import { fleetExitCode, renderFleetJson, renderFleetTable, type StackResult } from "./fleet/table";

const REPO = join(__dirname, "..");

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseFleetArgs(argv, REPO);
  if (opts === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const stacks = await resolveStacks(opts, listBackendStacks);
  // With --json, stdout carries the JSON alone; the progress lines go to stderr.
  const progress = opts.json ? process.stderr : process.stdout;
  const log = (stack: string, line: string) => progress.write(`[${stack}] ${line}\n`);
  const selected = await currentStacks(stacks);

  const outcomes = await runPool(stacks, opts.concurrency, (s) => runStack(opts.command, s, ctx(opts, log)), {
    failFast: opts.failFast,
    failed: (r) => r.result === "failed",
  });
  const results: StackResult[] = outcomes.map((o, i) => {
    const { name: stack, workDir } = stacks[i];
    if (o.kind === "done") return o.value;
    if (o.kind === "threw")
      return { stack, workDir, domain: "", result: "failed", seconds: 0, error: errorLine(o.error) };
    return { stack, workDir, domain: "", result: "skipped", seconds: 0, error: "not started (--fail-fast)" };
  });
  await restoreSelection(selected);

  const report = { command: opts.command, stacks: results, exitCode: fleetExitCode(results) };
  if (opts.json) process.stdout.write(renderFleetJson(report));
  else process.stdout.write(`\n${renderFleetTable(report)}`);
  return report.exitCode;
}

const ctx = (opts: FleetOptions, log: (stack: string, line: string) => void) => ({
  log,
  repoDir: REPO,
  checkArgs: opts.extra,
});

async function listBackendStacks(workDir: string): Promise<string[]> {
  try {
    const ws = await LocalWorkspace.create({ workDir });
    return (await ws.listStacks()).map((s) => s.name);
  } catch (e) {
    throw new UsageError(`cannot list the stacks of the project in ${workDir}: ${errorLine(e)}`);
  }
}

/**
 * Selecting a stack (as the Automation API does for each) changes the project's current stack; the one current
 * before the run is selected again afterwards, so `pulumi` without --stack acts on the same stack as before.
 */
async function currentStacks(stacks: readonly StackTarget[]): Promise<Array<[string, string]>> {
  const dirs = [...new Set(stacks.map((s) => s.workDir))];
  const found = await Promise.all(
    dirs.map(async (workDir) => {
      try {
        const current = await (await LocalWorkspace.create({ workDir })).stack();
        return current ? ([workDir, current.name] as [string, string]) : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return found.filter((x): x is [string, string] => x !== undefined);
}

async function restoreSelection(selected: ReadonlyArray<[string, string]>) {
  for (const [workDir, name] of selected) {
    try {
      await (await LocalWorkspace.create({ workDir })).selectStack(name);
    } catch {
      // The stack may be gone; the selection is a convenience only.
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    process.stderr.write(`fleet: ${err instanceof UsageError ? err.message : errorLine(err)}\n`);
    process.exitCode = 2;
  },
);
