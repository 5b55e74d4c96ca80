// Fuzzing filtermail's outgoing and incoming ports in the bundled chatmaild, with the sink as the reinjection
// listener: every reply is well-formed (smtp-oracle.ts), and afterwards mail still flows (target.invariants.ts).
import { describe, expect, it } from "vitest";
import { checkProperty } from "./budget";
import { fuzzTarget } from "./setup";
import { runSession, splitAt } from "./session";
import { politeEnd, smtpInput, type Direction } from "./smtp-inputs";
import { replyProblem } from "./smtp-oracle";

const target = fuzzTarget();

describe.each(["outgoing", "incoming"] as const)("filtermail %s", (direction: Direction) => {
  it(`smtp ${direction}: well-formed replies to anything, and mail still flows`, async () => {
    await checkProperty(`smtp ${direction}`, smtpInput(direction), async (input) => {
      await target.relay.ensureRunning();
      const before = target.invariants.beforeInput(direction);
      const chunks = splitAt(input.data, input.cuts);
      const end = input.polite ? politeEnd(input.data) : undefined;
      const polite = end !== undefined;
      const result = await runSession(
        { port: target.relay.ports[direction] },
        end ? [...chunks, end] : chunks,
        polite ? "wait" : "destroy",
      );
      if (polite) {
        expect(result.timedOut, "the session ended before its deadline").toBe(false);
        expect(result.closedByDaemon, "the daemon closed after QUIT").toBe(true);
      }
      expect(replyProblem(result.output, polite)).toBeUndefined();
      await target.invariants.afterInput(direction, before);
    });
    await target.invariants.afterProperty();
  });
});
