// The fleet's result: one row per stack (its domain, ok / changes / warn / failed / skipped, what changed or what
// the check found, how long it took), as a plain-text table or as JSON, and the exit code.
import type { Command } from "./args";
import { renderChanges, type ChangeCounts } from "./changes";
import { textTable } from "../textTable";

/**
 * ok: nothing to change (preview), nothing changed (up), outputs read, every check row ok.
 * changes: the preview found changes, or the up made them. warn: the check has warnings but no failure.
 * failed: the command failed (or a check row failed). skipped: not started, after a failure with --fail-fast.
 */
export type Result = "ok" | "changes" | "warn" | "failed" | "skipped";

export interface CheckCounts {
  readonly ok: number;
  readonly warn: number;
  readonly fail: number;
}

export interface StackResult {
  readonly stack: string;
  readonly workDir: string;
  /** The stack's mailDomain config; "" when it could not be read. */
  readonly domain: string;
  readonly result: Result;
  readonly seconds: number;
  /** preview and up: the operations by count. */
  readonly changes?: ChangeCounts;
  /** check: the rows by status. */
  readonly checks?: CheckCounts;
  /** outputs: each output's value, secret ones as [secret]. */
  readonly outputs?: Readonly<Record<string, unknown>>;
  /** Why it failed, on one line. */
  readonly error?: string;
}

export interface FleetReport {
  readonly command: Command;
  readonly stacks: readonly StackResult[];
  readonly exitCode: number;
}

/** 0 when no stack failed (a stack skipped under --fail-fast follows a failure, so it never stands alone). */
export const fleetExitCode = (results: readonly StackResult[]): number =>
  results.some((r) => r.result === "failed" || r.result === "skipped") ? 1 : 0;

/** The result of a preview or up from its change counts. */
export const changeResult = (counts: ChangeCounts): Result => (counts.total > 0 ? "changes" : "ok");

/** The result of a check run from its rows' counts and exit code. */
export const checkResult = (counts: CheckCounts, exitCode: number): Result =>
  counts.fail > 0 || exitCode !== 0 ? "failed" : counts.warn > 0 ? "warn" : "ok";

const DETAIL_HEADER: Record<Command, string> = {
  preview: "CHANGES",
  up: "CHANGES",
  check: "CHECKS",
  outputs: "OUTPUTS",
};

function detail(command: Command, r: StackResult): string {
  if (r.result === "skipped") return "-";
  switch (command) {
    case "preview":
    case "up":
      return r.changes ? renderChanges(r.changes) : "-";
    case "check":
      return r.checks ? `${r.checks.ok} ok, ${r.checks.warn} warn, ${r.checks.fail} fail` : "-";
    case "outputs": {
      if (!r.outputs) return "-";
      const n = Object.keys(r.outputs).length;
      const web = r.outputs.webUrl;
      return typeof web === "string" ? `webUrl ${web} (${n} outputs)` : `${n} outputs`;
    }
  }
}

export const seconds = (s: number) => `${s.toFixed(1)} s`;

/** The table: one line per stack, the error under each failed one, and a count line. */
export function renderFleetTable(report: Pick<FleetReport, "command" | "stacks">): string {
  const { command, stacks } = report;
  const out = textTable(
    ["STACK", "DOMAIN", "RESULT", DETAIL_HEADER[command], "DURATION"],
    stacks.map((r) => ({
      cells: [
        r.stack,
        r.domain || "-",
        r.result,
        detail(command, r),
        r.result === "skipped" ? "-" : seconds(r.seconds),
      ],
      ...(r.error ? { note: r.error } : {}),
    })),
  );
  const count = (result: Result) => stacks.filter((r) => r.result === result).length;
  const counts = (["ok", "changes", "warn", "failed", "skipped"] as const)
    .filter((r) => r === "ok" || r === "failed" || count(r) > 0)
    .map((r) => `${count(r)} ${r}`);
  out.push("", `${stacks.length} stack${stacks.length === 1 ? "" : "s"}: ${counts.join(", ")}`);
  return out.join("\n") + "\n";
}

/** The same as JSON: `{"command", "stacks": [...], "exitCode"}`. */
export function renderFleetJson(report: FleetReport): string {
  return JSON.stringify(report, null, 2) + "\n";
}
