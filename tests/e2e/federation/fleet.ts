// `npm run fleet` over both deployed relays, as an operator runs it on the project folder: the Automation API
// lists the backend's stacks (relay-a, relay-b), a preview right after the deploy changes nothing, one option
// changed on relay-b alone updates relay-b alone, and the outputs show each relay's webUrl and no secret.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderFleetTable, type FleetReport, type StackResult } from "../../../tools/fleet/table";
import { run } from "../proc";
import type { E2eTest } from "../suite/types";
import type { CheckEnv } from "./check";
import type { FedContext, Relay } from "./suite";

const REPO = join(__dirname, "../../..");
const log = (s: string) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`);
/**
 * The chatmail.ini step holds maxUserSendPerMinute, so it runs again when that option changes: the engine
 * replaces a remote command whose trigger (the step's hash) changed, which the fleet prints as one replace.
 */
const CHATMAIL_INI_LINE =
  /^\[relay-b\] (update|replace) relay-config-file:\/usr\/local\/lib\/chatmaild\/chatmail\.ini \((updated|replaced)\)$/m;

interface FleetRun {
  readonly report: FleetReport;
  readonly code: number;
  /** The progress lines (stderr under --json). */
  readonly progress: string;
}

export function fleetGroup(fed: FedContext, env: CheckEnv): E2eTest[] {
  const [a, b] = fed.relays;
  const stackName = (r: Relay) => `relay-${r.spec.tag}`;

  /**
   * Strings that must never appear in the fleet's output: the SSH key's lines and the value of every secret
   * output (read with the CLI directly, so that they stay out of the engine's transcript).
   */
  async function secrets(): Promise<string[]> {
    const key = readFileSync(a.ctx.target.keyPath, "utf8");
    const found = key
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length >= 16 && !l.startsWith("-----"));
    for (const r of fed.relays) {
      const masked = await r.ctx.stack.outputs(false);
      const names = Object.keys(masked).filter((name) => masked[name] === "[secret]");
      if (names.length === 0) continue;
      const shown = await run(
        "pulumi",
        ["--cwd", env.projectDir, "stack", "output", "--stack", stackName(r), "--json", "--show-secrets"],
        { env: env.engineEnv, quiet: true },
      );
      const plain = JSON.parse(shown.stdout) as Record<string, unknown>;
      for (const name of names) found.push(JSON.stringify(plain[name]), String(plain[name]));
    }
    return found.filter((s) => s.length >= 8);
  }

  /** `npm run fleet -- ARGS --cwd PROJECT`: its stdout and stderr, checked for secrets. */
  async function fleetRaw(args: readonly string[], label: string) {
    const t = Date.now();
    const r = await run("npm", ["run", "--silent", "fleet", "--", ...args, "--cwd", env.projectDir], {
      cwd: REPO,
      env: env.engineEnv,
      allowFail: true,
      timeoutMs: 30 * 60_000,
    });
    fed.time(label, (Date.now() - t) / 1000);
    const text = r.stdout + r.stderr;
    for (const s of await secrets())
      if (text.includes(s)) throw new Error(`npm run fleet ${args[0]} printed a secret value`);
    return r;
  }

  /** The same with --json: the report, whose exit code must be the command's. */
  async function fleet(args: readonly string[], label: string): Promise<FleetRun> {
    const r = await fleetRaw([...args, "--json"], label);
    let report: FleetReport;
    try {
      report = JSON.parse(r.stdout) as FleetReport;
    } catch {
      throw new Error(`npm run fleet ${args[0]} printed no JSON (exit ${r.code}):\n${r.stderr.slice(-3000)}`);
    }
    if (report.exitCode !== r.code) throw new Error(`exit code ${r.code}, JSON says ${report.exitCode}`);
    // The table an operator sees, rendered from the same report.
    log(`npm run fleet -- ${args.join(" ")}:\n${renderFleetTable(report)}`);
    return { report, code: r.code, progress: r.stderr };
  }

  const summary = (report: FleetReport) =>
    report.stacks
      .map(
        (s) =>
          `  ${s.stack} ${s.domain} ${s.result} ${JSON.stringify(s.changes?.changes ?? {})} ${s.error ?? ""}`,
      )
      .join("\n");

  /** The row of `r`'s stack; the fleet lists exactly the backend's two stacks. */
  function row(report: FleetReport, r: Relay): StackResult {
    const names = report.stacks.map((s) => s.stack).sort();
    if (names.join(",") !== "relay-a,relay-b") throw new Error(`stacks listed: ${names.join(", ")}`);
    const found = report.stacks.find((s) => s.stack === stackName(r))!;
    if (found.domain !== r.spec.domain)
      throw new Error(`${found.stack}: domain ${found.domain}, not ${r.spec.domain}`);
    return found;
  }

  function unchanged(report: FleetReport, r: Relay) {
    const s = row(report, r);
    if (s.result !== "ok" || s.changes?.total !== 0)
      throw new Error(
        `${s.stack}: expected ok with no change, got ${s.result} ${JSON.stringify(s.changes)} ${s.error ?? ""}`,
      );
  }

  /** Every stack ok with nothing to change; exit 0. */
  async function converged(label: string) {
    const { report, code } = await fleet(["preview"], label);
    for (const r of fed.relays) unchanged(report, r);
    if (code !== 0) throw new Error(`npm run fleet preview exited ${code}`);
  }

  /** relay-b's update: only it changed, its chatmail.ini step ran again, relay-a printed no change. */
  function onlyBUpdated(up: FleetRun) {
    const sb = row(up.report, b);
    const c = sb.changes?.changes ?? {};
    if (up.code !== 0 || sb.result !== "changes" || !((c.update ?? 0) + (c.replace ?? 0) > 0))
      throw new Error(`relay-b: expected updates (exit 0), got exit ${up.code}: ${summary(up.report)}`);
    unchanged(up.report, a);
    if (!CHATMAIL_INI_LINE.test(up.progress))
      throw new Error(`no progress line matching ${CHATMAIL_INI_LINE}`);
    const aChange = up.progress
      .split("\n")
      .find((l) => /^\[relay-a\] (create|update|delete|replace)\b/.test(l));
    if (aChange) throw new Error(`relay-a changed: ${aChange}`);
  }

  return [
    {
      name: "npm run fleet preview lists both stacks right after the deploy, each ok with no change",
      run: () => converged("npm run fleet preview"),
    },
    {
      name: "one option changed on relay-b alone: npm run fleet up updates relay-b and leaves relay-a as it is",
      async run() {
        const options = b.ctx.optionsFor();
        const restore = () => b.ctx.stack.configureRelay(options, b.ctx.target);
        await b.ctx.stack.configureRelay({ ...options, maxUserSendPerMinute: 61 }, b.ctx.target);
        let changed: FleetRun | undefined;
        let failure: unknown;
        try {
          changed = await fleet(["up"], "npm run fleet up (relay-b changed)");
        } catch (e) {
          failure = e;
        }
        // Back to the original config for the later groups, whatever happened above.
        await restore();
        const back = await fleet(["up"], "npm run fleet up (restore)");
        if (failure) throw failure;
        onlyBUpdated(changed!);
        onlyBUpdated(back);
        await converged("npm run fleet preview (after the restore)");
      },
    },
    {
      name: "npm run fleet outputs shows each relay's webUrl and never a secret",
      async run() {
        const { report, code } = await fleet(["outputs"], "npm run fleet outputs");
        if (code !== 0) throw new Error(`npm run fleet outputs exited ${code}: ${summary(report)}`);
        for (const r of fed.relays) {
          const s = row(report, r);
          const plain = await r.ctx.stack.outputs(false);
          if (typeof plain.webUrl !== "string" || !plain.webUrl.includes(r.spec.domain))
            throw new Error(`${s.stack}: the stack's webUrl is ${JSON.stringify(plain.webUrl)}`);
          if (s.outputs?.webUrl !== plain.webUrl)
            throw new Error(
              `${s.stack}: webUrl ${JSON.stringify(s.outputs?.webUrl)}, the stack has ${plain.webUrl}`,
            );
          // Exactly the stack's outputs as `pulumi stack output` masks them: a secret one is [secret].
          if (JSON.stringify(s.outputs) !== JSON.stringify(sorted(plain)))
            throw new Error(`${s.stack}: outputs differ from pulumi stack output's masked ones`);
        }
        // Without --json: one `[stack] webUrl = ...` line each, and an ok row with the webUrl in the table.
        const table = await fleetRaw(["outputs"], "npm run fleet outputs (table)");
        if (table.code !== 0) throw new Error(`npm run fleet outputs exited ${table.code}`);
        for (const r of fed.relays) {
          const url = (await r.ctx.stack.outputs(false)).webUrl as string;
          if (!table.stdout.split("\n").includes(`[${stackName(r)}] webUrl = ${url}`))
            throw new Error(`no line "[${stackName(r)}] webUrl = ${url}"`);
          const rowRe = new RegExp(
            `^${stackName(r)}\\s+${esc(r.spec.domain)}\\s+ok\\s+webUrl ${esc(url)} `,
            "m",
          );
          if (!rowRe.test(table.stdout))
            throw new Error(
              `the table has no ok row with the webUrl of ${stackName(r)}:\n${table.stdout.slice(-2000)}`,
            );
        }
      },
    },
  ];
}

const sorted = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).sort(([x], [y]) => x.localeCompare(y)));

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
