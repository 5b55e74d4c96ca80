import { describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import type { DownloadUnit, ServiceUnit } from "../../core/plan/types";
import { planFor, text, unit } from "./helpers";

describe("iroh part", () => {
  it("installs the pinned binary and restarts iroh-relay when it changes", () => {
    const sha = "a".repeat(64);
    const plan = planFor({ iroh_relay_sha256: sha });
    const download = unit(plan, `download:${PATHS.irohRelayBinary}`) as DownloadUnit;
    expect(download).toMatchObject({ sha256: sha, member: "./iroh-relay", phase: "install" });
    const svc = unit(plan, "service:iroh-relay.service") as ServiceUnit;
    expect(svc.restartOn).toContain(download.id);
  });

  it("serves HTTP on loopback behind nginx, and STUN publicly only without the TURN server", () => {
    const toml = text(planFor({ turn_server: "false" }), "/etc/iroh-relay.toml");
    expect(toml).toContain('http_bind_addr = "127.0.0.1:3340"');
    expect(toml).toContain("enable_stun = true\n");
    expect(toml).toContain('stun_bind_addr = "[::]:3478"');
    expect(text(planFor({ turn_server: "false", disable_ipv6: "true" }), "/etc/iroh-relay.toml")).toContain(
      'stun_bind_addr = "0.0.0.0:3478"',
    );
    // With coturn (the default), coturn answers STUN on the same port.
    const withTurn = text(planFor(), "/etc/iroh-relay.toml");
    expect(withTurn).toContain("enable_stun = false\n");
    expect(withTurn).not.toContain("stun_bind_addr");
  });

  it("runs no iroh relay of its own when irohRelay names another", () => {
    const plan = planFor({ iroh_relay: "https://iroh.example.net" });
    expect(plan.units.filter((u) => /iroh/.test(u.id)).map((u) => u.id)).toEqual([
      "service:iroh-relay.service",
    ]);
    expect(unit(plan, "service:iroh-relay.service")).toMatchObject({ enabled: false, running: false });
  });
});
