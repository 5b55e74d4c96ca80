// The order the engine may run steps in: it runs whatever has its dependencies met in parallel, so the plan's
// dependencies are the only order there is.
import { describe, expect, it } from "vitest";
import { planFor } from "./helpers";

describe("step dependencies", () => {
  it("each service step waits for the service step before it, so restarts never overlap", () => {
    const services = planFor().steps.filter((s) => s.kind === "service");
    expect(services.length).toBeGreaterThan(3);
    services.slice(1).forEach((s, i) => expect(s.dependsOn, s.id).toContain(services[i].id));
  });

  it("every step depends only on steps before it (the plan has no cycle)", () => {
    const seen = new Set<string>();
    for (const step of planFor({ mtail_address: "10.0.0.1" }).steps) {
      for (const d of step.dependsOn) expect(seen.has(d), `${step.id} -> ${d}`).toBe(true);
      seen.add(step.id);
    }
  });
});
