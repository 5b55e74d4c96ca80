import { describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import type { OnceUnit } from "../../core/plan/types";
import { planFor, text, unit } from "./helpers";

describe("opendkim part", () => {
  it("signs with the opendkim selector of the domain", () => {
    const plan = planFor({ mail_domain: "relay.example.net" });
    expect(text(plan, "/etc/opendkim.conf")).toMatch(/^Domain\s+relay\.example\.net$/m);
    expect(text(plan, `${PATHS.dkimKeyDir}/KeyTable`)).toContain(
      `opendkim._domainkey.relay.example.net relay.example.net:opendkim:${PATHS.dkimPrivateKey}`,
    );
    expect(text(plan, `${PATHS.dkimKeyDir}/SigningTable`)).toContain(
      "*@relay.example.net opendkim._domainkey.relay.example.net",
    );
    expect(text(plan, "/etc/opendkim.conf")).toContain(
      `Socket                  local:${PATHS.opendkimSocket}`,
    );
  });

  it("generates the key once, as user opendkim", () => {
    const once = unit(planFor(), "once:dkim-key") as OnceUnit;
    expect(once.creates).toBe(PATHS.dkimPrivateKey);
    expect(once.script).toMatch(
      /^runuser -u opendkim -- \/usr\/sbin\/opendkim-genkey -D \/etc\/dkimkeys -d chat\.example\.org -s opendkim$/m,
    );
    const step = planFor().steps.find((s) => s.id === "once:dkim-key")!;
    expect(step.script).toContain(`if [ ! -e ${PATHS.dkimPrivateKey} ]; then\n`);
  });

  it("rejects incoming mail without a valid signature of the From: domain", () => {
    const final = text(planFor(), "/etc/opendkim/final.lua");
    expect(final).toContain('odkim.set_reply(ctx, "554", "5.7.1", "No valid DKIM signature found")');
    expect(text(planFor(), "/etc/opendkim.conf")).toMatch(
      /^ScreenPolicyScript\s+\/etc\/opendkim\/screen\.lua$/m,
    );
  });
});
