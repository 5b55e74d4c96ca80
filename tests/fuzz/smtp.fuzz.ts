// Fuzzing filtermail's outgoing and incoming ports in the bundled chatmaild, with the sink as the reinjection
// listener: every reply is well-formed (smtp-oracle.ts), and afterwards mail still flows (invariants.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUDGET_MS, checkProperty, PROPERTY_MS, SEED } from "./budget";
import { Health } from "./health";
import { Invariants } from "./invariants";
import { Relay } from "./relay";
import { runSession, splitAt } from "./session";
import { politeEnd, smtpInput, type Direction } from "./smtp-inputs";
import { replyProblem } from "./smtp-oracle";

let relay: Relay;
let invariants: Invariants;

beforeAll(async () => {
  console.log(
    `fuzz seed ${SEED} (FUZZ_SEED), budget ${BUDGET_MS} ms (FUZZ_BUDGET_MS), ${PROPERTY_MS} ms per property`,
  );
  relay = await Relay.start();
  invariants = new Invariants(relay, await Health.prepare(relay));
});
afterAll(async () => {
  await relay?.stop();
});

describe.each(["outgoing", "incoming"] as const)("filtermail %s", (direction: Direction) => {
  it(`smtp ${direction}: well-formed replies to anything, and mail still flows`, async () => {
    await checkProperty(`smtp ${direction}`, smtpInput(direction), async (input) => {
      await relay.ensureRunning();
      const before = invariants.beforeInput(direction);
      const chunks = splitAt(input.data, input.cuts);
      const end = input.polite ? politeEnd(input.data) : undefined;
      const polite = end !== undefined;
      const result = await runSession(
        { port: relay.ports[direction] },
        end ? [...chunks, end] : chunks,
        polite ? "wait" : "destroy",
      );
      if (polite) {
        expect(result.timedOut, "the session ended before its deadline").toBe(false);
        expect(result.closedByDaemon, "the daemon closed after QUIT").toBe(true);
      }
      expect(replyProblem(result.output, polite)).toBeUndefined();
      await invariants.afterInput(direction, before);
    });
    await invariants.afterProperty();
  });
});
