// Fuzzing the dict sockets of doveauth, metadata and lastlogin in the bundled chatmaild: every input is answered
// by the framing rules (dict-oracle.ts), and afterwards the daemon still does its job (invariants.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUDGET_MS, checkProperty, PROPERTY_MS, SEED } from "./budget";
import { dictInput, type DictDaemon } from "./dict-inputs";
import { answerProblem, expectedAnswers } from "./dict-oracle";
import { Health } from "./health";
import { Invariants } from "./invariants";
import { Relay } from "./relay";
import { runSession, splitAt } from "./session";

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

describe.each(["doveauth", "metadata", "lastlogin"] as const)("the %s dict socket", (daemon: DictDaemon) => {
  it(`dict ${daemon}: one answer per request, in order, and the daemon keeps serving`, async () => {
    await checkProperty(`dict ${daemon}`, dictInput(daemon), async (input) => {
      await relay.ensureRunning();
      const before = invariants.beforeInput(daemon);
      const result = await runSession(
        { path: relay.sockets[daemon] },
        splitAt(input.data, input.cuts),
        input.finish,
      );
      if (input.finish === "end") {
        expect(result.timedOut, "the session ended before its deadline").toBe(false);
        expect(result.closedByDaemon, "the daemon closed after the client's end").toBe(true);
        const expected = expectedAnswers(input.data);
        expect(answerProblem(result.output.toString("utf8"), expected, result.outputCut)).toBeUndefined();
      }
      await invariants.afterInput(daemon, before);
    });
    await invariants.afterProperty();
  });
});
