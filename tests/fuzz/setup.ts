// What every fuzz file does first: print the seed and budget (so a failure can be replayed), start the bundled
// relay with its health account, and stop it after the file's properties.
import { afterAll, beforeAll } from "vitest";
import { BUDGET_MS, PROPERTY_MS, SEED } from "./budget";
import { Health } from "./health";
import { Invariants } from "./invariants";
import { Relay } from "./relay";

export interface FuzzTarget {
  relay: Relay;
  invariants: Invariants;
}

/** Registers the file's start and stop hooks; the fields are set once beforeAll has run. */
export function fuzzTarget(): FuzzTarget {
  const target = {} as FuzzTarget;
  beforeAll(async () => {
    console.log(
      `fuzz seed ${SEED} (FUZZ_SEED), budget ${BUDGET_MS} ms (FUZZ_BUDGET_MS), ${PROPERTY_MS} ms per property`,
    );
    target.relay = await Relay.start();
    target.invariants = new Invariants(target.relay, await Health.prepare(target.relay));
  });
  afterAll(async () => {
    await target.relay?.stop();
  });
  return target;
}
