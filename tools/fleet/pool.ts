// Runs one task per item with at most `limit` at once. A failed task never stops the others, unless `failFast`:
// then no new task starts after the first failure (those already running finish) and the rest are "skipped".

export type Outcome<R> =
  | { readonly kind: "done"; readonly value: R }
  | { readonly kind: "threw"; readonly error: Error }
  | { readonly kind: "skipped" };

export interface PoolOptions<R> {
  /** Stop starting tasks after the first failure. */
  readonly failFast?: boolean;
  /** Whether a finished task's value counts as a failure (a task that throws always does). */
  readonly failed?: (value: R) => boolean;
}

/** The outcome of each item, in the items' order. */
export async function runPool<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
  opts: PoolOptions<R> = {},
): Promise<Array<Outcome<R>>> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new Error(`runPool: limit ${limit} is not a whole number ≥ 1`);
  const outcomes: Array<Outcome<R>> = items.map(() => ({ kind: "skipped" }));
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < items.length) {
      const i = next++;
      try {
        const value = await task(items[i], i);
        outcomes[i] = { kind: "done", value };
        if (opts.failFast && opts.failed?.(value)) stop = true;
      } catch (e) {
        outcomes[i] = { kind: "threw", error: e instanceof Error ? e : new Error(String(e)) };
        if (opts.failFast) stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return outcomes;
}
