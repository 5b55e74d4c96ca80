// The iroh-relay download: the binary is installed only after its sha256 matched the configured one. A wrong
// checksum (a tampered mirror, a typo in irohRelaySha256) fails the deploy with a clear message and leaves the
// running relay exactly as it was.
import { PATHS } from "../../../core/plan/facts";
import { startTimes } from "./server";
import type { E2eTest } from "./types";

const WRONG_SHA256 = "0".repeat(64);

export const irohDownload: E2eTest[] = [
  {
    name: "a wrong irohRelaySha256 fails the deploy with a clear message and leaves the installed binary running",
    needs: [`download:${PATHS.irohRelayBinary}`, "service:iroh-relay.service"],
    async run(ctx) {
      const binarySum = () => ctx.ssh.out(`sha256sum ${PATHS.irohRelayBinary}`);
      const before = await binarySum();
      const startedBefore = (await startTimes(ctx, ["iroh-relay.service"])).get("iroh-relay.service");
      let failure = "";
      try {
        await ctx.deploy({ irohRelaySha256: WRONG_SHA256 });
      } catch (err) {
        failure = String(err);
      }
      if (!failure) throw new Error("the deploy with a wrong irohRelaySha256 succeeded");
      for (const expected of [
        `download:${PATHS.irohRelayBinary}`,
        `expected ${WRONG_SHA256}`,
        "left unchanged",
      ]) {
        if (!failure.includes(expected))
          throw new Error(`the failure does not say "${expected}":\n${failure}`);
      }
      if ((await binarySum()) !== before) throw new Error("the installed iroh-relay binary changed");
      const startedAfter = (await startTimes(ctx, ["iroh-relay.service"])).get("iroh-relay.service");
      if (startedAfter !== startedBefore) throw new Error("iroh-relay.service was restarted");
      // The configured checksum again: nothing is left to do, as after a Pulumi update that was fixed.
      const restored = await ctx.deploy({});
      if (restored.result.ran.length > 0) throw new Error(`restoring ran ${restored.result.ran.join(", ")}`);
    },
  },
];
