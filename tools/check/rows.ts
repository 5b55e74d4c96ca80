// One row per check: what was checked, its verdict, what was seen, and what to do when it is not ok. The table and
// the JSON form are the two ways out; the exit code says whether any row failed.
import { textTable } from "../textTable";

export type Status = "ok" | "warn" | "fail";

export interface Row {
  /** dns, reach, server or roundtrip: where the check looks. */
  readonly group: string;
  /** Stable name of the check, like `MX chat.example.org` or `unit iroh-relay.service`. */
  readonly check: string;
  readonly status: Status;
  /** What was seen (a value, a difference, a duration). */
  readonly detail: string;
  /** What to do; empty for ok rows. */
  readonly advice: string;
}

export const ok = (group: string, check: string, detail: string): Row => ({
  group,
  check,
  status: "ok",
  detail,
  advice: "",
});
export const warn = (group: string, check: string, detail: string, advice: string): Row => ({
  group,
  check,
  status: "warn",
  detail,
  advice,
});
export const fail = (group: string, check: string, detail: string, advice: string): Row => ({
  group,
  check,
  status: "fail",
  detail,
  advice,
});

/** 0 when no row failed; warnings alone do not fail a check. */
export const exitCode = (rows: readonly Row[]): number => (rows.some((r) => r.status === "fail") ? 1 : 0);

const MAX_DETAIL = 90;
const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/** A plain-text table: group, check, status, detail; the advice of each non-ok row on the line below it. */
export function renderTable(rows: readonly Row[]): string {
  const out = textTable(
    ["GROUP", "CHECK", "STATUS", "DETAIL"],
    rows.map((r) => ({
      cells: [r.group, r.check, r.status.toUpperCase(), clip(oneLine(r.detail), MAX_DETAIL)],
      ...(r.status !== "ok" ? { note: oneLine(r.advice) } : {}),
    })),
  );
  const count = (s: Status) => rows.filter((r) => r.status === s).length;
  out.push("", `${count("ok")} ok, ${count("warn")} warn, ${count("fail")} fail`);
  return out.join("\n") + "\n";
}

const oneLine = (s: string) => s.replace(/;?\s*\n\s*/g, "; ");
