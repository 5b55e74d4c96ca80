// Applies a plan to the test server the way the Pulumi program does: steps in order, each one's script with its
// stdin over SSH. Like a Pulumi command resource, a step whose hash equals the hash last applied under its id does
// not run ("unchanged inputs, no run"); the hashes live in a state file on the host, one per testbed run.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Plan } from "../../core/plan";
import type { Ssh } from "./ssh";

export interface DeployResult {
  /** Ids of the steps that ran, in order. */
  readonly ran: readonly string[];
  readonly unchanged: number;
  readonly seconds: number;
}

type State = Record<string, string>;

function readState(path: string): State {
  return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as State) : {};
}

export async function applyPlan(
  plan: Plan,
  ssh: Ssh,
  statePath: string,
  log: (s: string) => void,
): Promise<DeployResult> {
  const started = Date.now();
  const state = readState(statePath);
  const ran: string[] = [];
  let unchanged = 0;
  for (const step of plan.steps) {
    if (state[step.id] === step.hash) {
      unchanged++;
      continue;
    }
    const t = Date.now();
    const result = await ssh.exec(step.script, { stdin: step.stdin, secret: step.secret, allowFail: true });
    if (result.code !== 0) {
      // The remote output of a secret step stays out of the log: it could echo its input.
      const detail = step.secret
        ? "(output withheld: the step carries a secret)"
        : (result.stderr || result.stdout).trimEnd().split("\n").slice(-40).join("\n");
      throw new Error(`deploy: step ${step.id} failed with exit ${result.code}\n${detail}`);
    }
    // Recorded after each success, so a failed deploy resumes like a Pulumi update that stopped midway.
    state[step.id] = step.hash;
    writeFileSync(statePath, JSON.stringify(state, null, 1) + "\n");
    ran.push(step.id);
    log(`  ${step.id} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  }
  return { ran, unchanged, seconds: (Date.now() - started) / 1000 };
}
