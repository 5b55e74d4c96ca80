// Fuzzing the dict sockets of doveauth, metadata and lastlogin in the bundled chatmaild: every input is answered
// by the framing rules (dict-oracle.ts), and afterwards the daemon still does its job (target.invariants.ts).
import { describe, expect, it } from "vitest";
import { checkProperty } from "./budget";
import { dictInput, type DictDaemon } from "./dict-inputs";
import { answerProblem, expectedAnswers } from "./dict-oracle";
import { fuzzTarget } from "./setup";
import { runSession, splitAt } from "./session";

const target = fuzzTarget();

describe.each(["doveauth", "metadata", "lastlogin"] as const)("the %s dict socket", (daemon: DictDaemon) => {
  it(`dict ${daemon}: one answer per request, in order, and the daemon keeps serving`, async () => {
    await checkProperty(`dict ${daemon}`, dictInput(daemon), async (input) => {
      await target.relay.ensureRunning();
      const before = target.invariants.beforeInput(daemon);
      const result = await runSession(
        { path: target.relay.sockets[daemon] },
        splitAt(input.data, input.cuts),
        input.finish,
      );
      if (input.finish === "end") {
        expect(result.timedOut, "the session ended before its deadline").toBe(false);
        expect(result.closedByDaemon, "the daemon closed after the client's end").toBe(true);
        const expected = expectedAnswers(input.data);
        expect(answerProblem(result.output.toString("utf8"), expected, result.outputCut)).toBeUndefined();
      }
      await target.invariants.afterInput(daemon, before);
    });
    await target.invariants.afterProperty();
  });
});
