// What a command carried, for the operator: one row per part (addresses, files, size), the total and the time.
import { UsageError } from "./args";
import type { Part } from "../../core/state";
import { textTable } from "../textTable";
import type { PartCounts } from "./tar";

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export const formatSeconds = (s: number) =>
  s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;

/** The table of the parts carried, and a total line. */
export function carriedTable(parts: readonly Part[], counts: PartCounts): string[] {
  const rows = parts.map((p) => ({
    cells: [
      p,
      p === "keys" ? "-" : String(counts[p].accounts.size),
      String(counts[p].files),
      formatBytes(counts[p].bytes),
    ],
  }));
  const files = parts.reduce((n, p) => n + counts[p].files, 0);
  const bytes = parts.reduce((n, p) => n + counts[p].bytes, 0);
  const accounts = new Set(parts.flatMap((p) => [...counts[p].accounts])).size;
  return [
    ...textTable(["PART", "ADDRESSES", "FILES", "SIZE"], rows),
    "",
    `${accounts} addresses, ${files} files, ${formatBytes(bytes)}`,
  ];
}

/**
 * Runs a command's main and sets the exit code: 2 for a usage error, 1 for any other failure. Errors of the
 * `known` classes are the tool's own messages and print on one line; anything else prints its stack.
 */
export function runCommand(
  name: string,
  main: () => Promise<number>,
  known: ReadonlyArray<abstract new (...args: never[]) => Error>,
): void {
  main().then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      const own = [UsageError, ...known].some((c) => err instanceof c);
      process.stderr.write(`${name}: ${own ? err.message : (err.stack ?? err.message)}\n`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    },
  );
}
