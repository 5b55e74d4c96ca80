// `npm run bench -- deploy`: how long the real engine path takes on a booted test server (root, Linux), next to
// the plan-over-SSH runner doing the same steps on a second, fresh server in the same run: first deploy, a no-op
// deploy and a one-option change. Wall time and the CPU time of everything the deploy ran on this machine (the
// CLI, language host, program, plugins, ssh), from this process's reaped-children counters. No-op rows repeat.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { applyPlan } from "../../tests/e2e/deploy";
import { Engine } from "../../tests/e2e/engine";
import { startTestbedRun } from "../../tests/e2e/harness";
import { startTestServer, type TestServer } from "../../tests/e2e/testServer";

const ROUNDS = 5;
const CHANGE = { maxUserSendPerMinute: 61 };
const log = (s: string) => process.stderr.write(`[bench deploy] ${s}\n`);

/** CPU seconds of reaped child processes (and their reaped children): fields cutime + cstime of /proc/self/stat. */
function childrenCpu(): number {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

interface Sample {
  wall: number;
  cpu: number;
}

async function measure(f: () => Promise<unknown>): Promise<Sample> {
  const cpu = childrenCpu();
  const t = process.hrtime.bigint();
  await f();
  return { wall: Number(process.hrtime.bigint() - t) / 1e9, cpu: childrenCpu() - cpu };
}

async function repeat(f: () => Promise<unknown>): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; i < ROUNDS; i++) samples.push(await measure(f));
  return samples;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

function row(path: string, step: string, samples: Sample[]): string {
  const walls = samples.map((s) => s.wall);
  const cpu = quantile(
    samples.map((s) => s.cpu),
    0.5,
  );
  const p50 = quantile(walls, 0.5);
  const p99 = quantile(walls, 0.99);
  return `| ${path} | ${step} | ${samples.length} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${(cpu * 1000).toFixed(0)} |`;
}

async function engineRows(server: TestServer, dir: string): Promise<string[]> {
  const engine = new Engine(dir, log);
  const stack = await engine.stack("bench");
  await stack.configureRelay(server.options(), server.target);
  const rows: string[] = [];
  rows.push(row("pulumi", "preview, empty stack", [await measure(() => stack.preview())]));
  rows.push(row("pulumi", "first up", [await measure(() => stack.up(["--skip-preview"]))]));
  rows.push(row("pulumi", "no-op preview", await repeat(() => stack.preview(["--expect-no-changes"]))));
  rows.push(
    row(
      "pulumi",
      "no-op up --skip-preview",
      await repeat(() => stack.up(["--skip-preview", "--expect-no-changes"])),
    ),
  );
  rows.push(
    row("pulumi", "no-op up (preview, then update)", await repeat(() => stack.up(["--expect-no-changes"]))),
  );
  await stack.configureRelay(server.options(CHANGE), server.target);
  rows.push(
    row("pulumi", "single-change up --skip-preview", [await measure(() => stack.up(["--skip-preview"]))]),
  );
  return rows;
}

async function sshRows(server: TestServer, dir: string): Promise<string[]> {
  const state = join(dir, "ssh-runner-state.json");
  const first = server.plan().plan;
  const rows: string[] = [];
  rows.push(row("ssh runner", "plan (config to steps)", await repeat(async () => server.plan())));
  rows.push(
    row("ssh runner", "first deploy", [await measure(() => applyPlan(first, server.ssh, state, () => {}))]),
  );
  rows.push(
    row("ssh runner", "no-op deploy", await repeat(() => applyPlan(first, server.ssh, state, () => {}))),
  );
  const changed = server.plan(CHANGE).plan;
  rows.push(
    row("ssh runner", "single-change deploy", [
      await measure(() => applyPlan(changed, server.ssh, state, () => {})),
    ]),
  );
  return rows;
}

export async function run(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench deploy boots test servers: it needs root");
  const testbed = startTestbedRun("cmbench-", log);
  try {
    const a = await startTestServer(testbed, log);
    const pulumi = await engineRows(a, join(testbed.runDir, "engine"));
    const b = await startTestServer(testbed, log);
    const ssh = await sshRows(b, testbed.runDir);
    console.log("| path | step | runs | p50 s | p99 s | local CPU ms (p50) |");
    console.log("|---|---|---:|---:|---:|---:|");
    for (const line of [...pulumi, ...ssh]) console.log(line);
    await testbed.cleanup.run();
  } catch (e) {
    await testbed.fail(e);
    throw e;
  }
}
