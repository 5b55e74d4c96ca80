// One stack of the fleet: selected through the Automation API (its own workspace, the project folder's program),
// its mailDomain and secret config read, then the command run with each engine event streamed as one prefixed
// line; `check` runs `npm run check -- --stack NAME --cwd DIR --json` instead and counts its rows.
import { spawn } from "node:child_process";
import {
  LocalWorkspace,
  type ConfigMap,
  type EngineEvent,
  type OpMap,
  type Stack,
} from "@pulumi/pulumi/automation";
import { PROJECT_NAME } from "../../core/config/pulumiYaml";
import type { Command } from "./args";
import { summariseChanges } from "./changes";
import { eventLine, oneLine, outputLine, secretMasker, shownOutput } from "./events";
import type { StackTarget } from "./stacks";
import { changeResult, checkResult, type CheckCounts, type StackResult } from "./table";

export interface RunContext {
  /** Prints one line of a stack's progress (the caller adds the `[stack]` prefix). */
  log(stack: string, line: string): void;
  /** The checkout whose `npm run check` runs. */
  readonly repoDir: string;
  /** Passed to every `npm run check` after its own arguments. */
  readonly checkArgs: readonly string[];
}

const MAIL_DOMAIN = `${PROJECT_NAME}:mailDomain`;

/** Runs `command` on one stack; never throws: a failure is a "failed" result with its reason. */
export async function runStack(command: Command, target: StackTarget, ctx: RunContext): Promise<StackResult> {
  const start = Date.now();
  const base = { stack: target.name, workDir: target.workDir };
  const elapsed = () => Math.round((Date.now() - start) / 100) / 10;
  let domain = "";
  let mask = (t: string) => t;
  const log = (line: string) => ctx.log(target.name, mask(line));
  let summary: OpMap | undefined;
  try {
    const stack = await LocalWorkspace.selectStack({ stackName: target.name, workDir: target.workDir });
    const config = await stack.getAllConfig();
    domain = String(config[MAIL_DOMAIN]?.value ?? "");
    mask = secretMasker(
      Object.values(config)
        .filter((c) => c.secret)
        .map((c) => c.value),
    );
    const onEvent = (event: EngineEvent) => {
      if (event.summaryEvent) summary = event.summaryEvent.resourceChanges;
      const line = eventLine(event, mask);
      if (line !== undefined) ctx.log(target.name, line);
    };
    switch (command) {
      case "preview": {
        const r = await stack.preview({ diff: true, onEvent });
        const changes = summariseChanges(r.changeSummary);
        return { ...base, domain, result: changeResult(changes), changes, seconds: elapsed() };
      }
      case "up": {
        const r = await stack.up({ diff: true, onEvent });
        const changes = summariseChanges(summary ?? r.summary.resourceChanges);
        return { ...base, domain, result: changeResult(changes), changes, seconds: elapsed() };
      }
      case "outputs":
        return {
          ...base,
          domain,
          ...(await outputs(stack, (m) => (mask = m), config, log)),
          seconds: elapsed(),
        };
      case "check":
        return { ...base, domain, ...(await check(target, ctx, log, mask)), seconds: elapsed() };
    }
  } catch (e) {
    const error = mask(errorLine(e));
    log(`failed: ${error}`);
    return {
      ...base,
      domain,
      result: "failed",
      ...(summary ? { changes: summariseChanges(summary) } : {}),
      error,
      seconds: elapsed(),
    };
  }
}

async function outputs(
  stack: Stack,
  setMask: (mask: (t: string) => string) => void,
  config: ConfigMap,
  log: (line: string) => void,
): Promise<Pick<StackResult, "result" | "outputs">> {
  const out = await stack.outputs();
  // Secret outputs are masked wherever they could appear, not only as their own value.
  const secrets = [
    ...Object.values(config)
      .filter((c) => c.secret)
      .map((c) => c.value),
    ...Object.values(out)
      .filter((o) => o.secret)
      .map((o) => o.value),
  ];
  const mask = secretMasker(secrets);
  setMask(mask);
  const shown: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(out).sort(([a], [b]) => a.localeCompare(b))) {
    shown[name] = shownOutput(value);
    log(outputLine(name, value, mask));
  }
  return { result: "ok", outputs: shown };
}

interface CheckRow {
  readonly group: string;
  readonly check: string;
  readonly status: "ok" | "warn" | "fail";
  readonly detail: string;
}

async function check(
  target: StackTarget,
  ctx: RunContext,
  log: (line: string) => void,
  mask: (t: string) => string,
): Promise<Pick<StackResult, "result" | "checks" | "error">> {
  const args = ["run", "--silent", "check", "--", "--stack", target.name, "--cwd", target.workDir, "--json"];
  const r = await spawnCollect("npm", [...args, ...ctx.checkArgs], ctx.repoDir);
  let parsed: { rows: CheckRow[]; exitCode: number };
  try {
    parsed = JSON.parse(r.stdout) as { rows: CheckRow[]; exitCode: number };
    if (!Array.isArray(parsed.rows)) throw new Error("no rows");
  } catch {
    const why = lastLine(r.stderr) || lastLine(r.stdout) || `exit ${r.code}`;
    throw new Error(`npm run check printed no result (exit ${r.code}): ${why}`);
  }
  for (const row of parsed.rows)
    if (row.status !== "ok")
      log(`${row.status.toUpperCase()} ${row.group} ${row.check}: ${oneLine(row.detail, 200)}`);
  const checks: CheckCounts = {
    ok: parsed.rows.filter((row) => row.status === "ok").length,
    warn: parsed.rows.filter((row) => row.status === "warn").length,
    fail: parsed.rows.filter((row) => row.status === "fail").length,
  };
  log(`check: ${checks.ok} ok, ${checks.warn} warn, ${checks.fail} fail (exit ${r.code})`);
  const result = checkResult(checks, r.code);
  const failed = parsed.rows.filter((row) => row.status === "fail").map((row) => row.check);
  return {
    result,
    checks,
    ...(result === "failed"
      ? { error: mask(failed.length > 0 ? `failed: ${failed.join("; ")}` : `npm run check exited ${r.code}`) }
      : {}),
  };
}

function spawnCollect(
  program: string,
  args: readonly string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new Error(`${program}: could not start: ${e.message}`)));
    child.on("close", (code) =>
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
  });
}

const lastLine = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .pop() ?? "";

/**
 * The reason of a failure on one line. The Automation API's CommandError carries the CLI's whole stdout and
 * stderr; its `error:` lines say why (the last one that is more than "update failed").
 */
export function errorLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const errors = message
    .split("\n")
    // CommandResult.toString() starts the CLI's streams with " stdout: " and " stderr: ".
    .map((l) => l.trim().replace(/^(stdout|stderr): /, ""))
    .filter((l) => /^error: /.test(l))
    .map((l) => l.slice("error: ".length).trim());
  const telling = errors.filter((l) => !/^(update|preview|refresh|destroy) failed$/.test(l));
  const pick = telling.pop() ?? errors.pop() ?? lastLine(message);
  return oneLine(pick, 300);
}
