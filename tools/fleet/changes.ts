// Change counts from the engine's summary (`changeSummary` of a preview, `summary.resourceChanges` of an up, the
// summary event of a failed one): what would change or changed, by operation, and what stays as it is.
import type { OpMap } from "@pulumi/pulumi/automation";

/** Operations that change nothing: the engine's own `HasChanges` leaves out the same ones. */
const NO_CHANGE = new Set(["same", "read", "discard", "read-replacement"]);

/** The order operations are listed in; others follow in alphabetical order. */
const ORDER = ["create", "update", "replace", "create-replacement", "delete-replaced", "delete", "import"];

export interface ChangeCounts {
  /** Non-zero counts of the operations that change something, in a stable order. */
  readonly changes: Readonly<Record<string, number>>;
  /** Sum of `changes`. */
  readonly total: number;
  /** Resources that stay as they are (same, read). */
  readonly unchanged: number;
}

export function summariseChanges(
  summary: OpMap | Readonly<Record<string, number | undefined>> | undefined,
): ChangeCounts {
  const entries = Object.entries(summary ?? {}).filter(
    (e): e is [string, number] => typeof e[1] === "number" && e[1] > 0,
  );
  const rank = (op: string) => (ORDER.includes(op) ? ORDER.indexOf(op) : ORDER.length);
  const changing = entries
    .filter(([op]) => !NO_CHANGE.has(op))
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  return {
    changes: Object.fromEntries(changing),
    total: changing.reduce((n, [, c]) => n + c, 0),
    unchanged: entries.filter(([op]) => NO_CHANGE.has(op)).reduce((n, [, c]) => n + c, 0),
  };
}

/** `2 update, 1 create`-style text; "none" when nothing changes. */
export function renderChanges(counts: ChangeCounts): string {
  const parts = Object.entries(counts.changes).map(([op, n]) => `${n} ${op}`);
  return parts.length === 0 ? "none" : parts.join(", ");
}
