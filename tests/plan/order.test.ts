// The order the engine may run steps in: it runs whatever has its dependencies met in parallel, so the plan's
// dependencies, and the lock service steps take on the server, are the only order there is.
import { describe, expect, it } from "vitest";
import { SERVICE_LOCK } from "../../core/plan/steps";
import { planFor } from "./helpers";

describe("step order", () => {
  it("every service step takes the server's service lock before it calls systemctl", () => {
    const services = planFor().steps.filter((s) => s.kind === "service");
    expect(services.length).toBeGreaterThan(3);
    for (const s of services) {
      const lock = s.script.indexOf(`exec 9>${SERVICE_LOCK} && flock 9`);
      expect(lock, s.id).toBeGreaterThan(0);
      expect(s.script.indexOf("systemctl"), s.id).toBeGreaterThan(lock);
    }
  });

  it("every step depends only on steps before it (the plan has no cycle)", () => {
    const seen = new Set<string>();
    for (const step of planFor({ mtail_address: "10.0.0.1" }).steps) {
      for (const d of step.dependsOn) expect(seen.has(d), `${step.id} -> ${d}`).toBe(true);
      seen.add(step.id);
    }
  });
});
