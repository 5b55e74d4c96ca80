// Figures from repeated rounds: a row's rounds are summarised by their median and their spread (lowest to
// highest), so one disturbed round (other work on the machine) shows as spread rather than moving the figure.

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** "median (lowest–highest)" with `digits` decimals. */
export function summary(values: number[], digits: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(digits);
  return `${f(percentile(sorted, 50))} (${f(sorted[0])}–${f(sorted[sorted.length - 1])})`;
}
