// The plain-text tables of the operator commands (check, fleet): columns padded to their widest cell, a dashed
// rule under the header, and under a row its note ("-> what to do"), indented past the first column.
export interface TableRow {
  readonly cells: readonly string[];
  readonly note?: string;
}

export function textTable(header: readonly string[], rows: readonly TableRow[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r.cells[i].length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (i === c.length - 1 ? s : s.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const out = [line(header), line(widths.map((w) => "-".repeat(w)))];
  for (const r of rows) {
    out.push(line(r.cells));
    if (r.note) out.push(`${" ".repeat(widths[0] + 2)}-> ${r.note}`);
  }
  return out;
}
