// The fuzz layer's time budget and seed. FUZZ_BUDGET_MS bounds the whole layer (default 75 s): after an
// allowance for building the bundle and starting the daemons, each property gets an equal share and fast-check
// stops generating inputs when it is used up. FUZZ_SEED fixes the inputs (default below, printed with every
// result); a failure prints its seed and path, and FUZZ_SEED plus FUZZ_PATH replay exactly that counterexample.
import fc from "fast-check";
import { expect } from "vitest";
import { showInput } from "./show";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw)) throw new Error(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

export const BUDGET_MS = envInt("FUZZ_BUDGET_MS", 75_000);
export const SEED = envInt("FUZZ_SEED", 20_261_202);
const REPLAY_PATH = process.env.FUZZ_PATH || undefined;

/** The properties in tests/fuzz/*.fuzz.ts; each gets an equal share of the budget. */
const PROPERTY_COUNT = 5;
/** Bundling and starting chatmaild twice, plus the final checks, come out of the budget first. */
const SETUP_ALLOWANCE_MS = 15_000;

export const PROPERTY_MS = Math.max(2_000, Math.floor((BUDGET_MS - SETUP_ALLOWANCE_MS) / PROPERTY_COUNT));
/** Extra time to shrink a counterexample found late in the share; spent only when a property fails. */
const SHRINK_MS = envInt("FUZZ_SHRINK_MS", 60_000);

/**
 * Runs `predicate` on inputs from `arb` for the property's time share with the layer's seed, prints how many
 * inputs it tried, and fails with the error, the shrunk counterexample and how to replay it when an input broke it.
 */
export async function checkProperty<T extends object>(
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (input: T) => Promise<void>,
): Promise<void> {
  // fast-check abandons the input that is running when time is up and ignores its outcome. Wait for it, so that
  // the next property and the final checks do not overlap with its session, and report it if it failed.
  let inFlight: Promise<unknown> = Promise.resolve();
  const property = fc.asyncProperty(arb, (input) => {
    const run = predicate(input);
    inFlight = run.then(
      () => undefined,
      (error: unknown) => ({ input, error }),
    );
    return run;
  });
  const params = { seed: SEED, numRuns: 1_000_000 };
  // The time limit ends the search; the run count is only a ceiling nobody reaches.
  let details = await fc.check(property, {
    ...params,
    path: REPLAY_PATH,
    plugins: [fc.interruptAfterTimeLimit(PROPERTY_MS)],
  });
  if (details.failed && details.interrupted) {
    // Time ran out while shrinking: go on from the counterexample so far, in a budget of its own.
    await inFlight;
    details = await fc.check(property, {
      ...params,
      path: details.counterexamplePath ?? undefined,
      plugins: [fc.interruptAfterTimeLimit(SHRINK_MS)],
    });
  }
  const abandoned = (await inFlight) as { input: T; error: unknown } | undefined;
  console.log(
    `fuzz ${name}: ${details.numRuns} inputs in a ${PROPERTY_MS} ms share, seed ${SEED}` +
      (details.failed || abandoned ? " - FAILED" : ""),
  );
  if (details.failed) {
    fail(
      name,
      `after ${details.numRuns} inputs (shrunk ${details.numShrinks} times)`,
      details.errorInstance,
      (details.counterexample as [T] | null)?.[0],
      `FUZZ_SEED=${SEED} FUZZ_PATH=${details.counterexamplePath}`,
    );
  }
  if (abandoned) {
    fail(
      name,
      "on the input running when its time was up (not shrunk)",
      abandoned.error,
      abandoned.input,
      `FUZZ_SEED=${SEED}`,
    );
  }
  // A share so small that not one input ran would pass without testing anything.
  expect(details.numRuns).toBeGreaterThan(0);
}

function fail(name: string, when: string, error: unknown, input: object | undefined, replay: string): never {
  throw new Error(
    `fuzz ${name} failed ${when}\n` +
      `${error instanceof Error ? error.message : String(error)}\n` +
      `counterexample:\n${input ? showInput(input) : "(none)"}\n` +
      `replay: ${replay} npx vitest run --config tests/fuzz/vitest.config.mts -t "${name}"`,
  );
}
