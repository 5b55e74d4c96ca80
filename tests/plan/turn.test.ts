import { describe, expect, it } from "vitest";
import { PATHS, publicPorts } from "../../core/plan/facts";
import type { OnceUnit, ServiceUnit } from "../../core/plan/types";
import { configFor, planFor, text, unit } from "./helpers";

const DROP_IN = "/etc/systemd/system/coturn.service.d/10-chatmail.conf";

describe("turn part", () => {
  it("runs Debian's coturn with TURN REST credentials on 3478 and the relay ports of turnRelayPorts", () => {
    const plan = planFor({ turn_relay_ports: "50000-50999" });
    expect(unit(plan, "packages:coturn")).toMatchObject({ packages: ["coturn"] });
    const conf = text(plan, PATHS.turnConfig);
    for (const line of [
      "listening-port=3478",
      "min-port=50000",
      "max-port=50999",
      "realm=chat.example.org",
      "use-auth-secret",
      "no-tls",
      "no-tcp-relay",
      "denied-peer-ip=127.0.0.0-127.255.255.255",
      "denied-peer-ip=10.0.0.0-10.255.255.255",
    ])
      expect(conf.split("\n")).toContain(line);
    // The secret is made on the server; no file the plan writes holds it.
    expect(conf).not.toMatch(/static-auth-secret/);
    const dropIn = text(plan, DROP_IN);
    expect(dropIn).toContain(`LoadCredential=turn-secret:${PATHS.turnSecret}\n`);
    expect(dropIn).toContain("ExecStart=\nExecStart=/usr/bin/turnserver -c /run/turnserver/turnserver.conf");
    expect(dropIn).toContain('"$$(cat %d/turn-secret)"');
  });

  it("makes the secret once on the server, root-only, before coturn and chatmaild start", () => {
    const plan = planFor();
    const secret = unit(plan, "once:turn-secret") as OnceUnit;
    expect(secret.creates).toBe(PATHS.turnSecret);
    expect(secret.script).toMatch(/^install -d -m 0755 \/etc\/chatmail\numask 077\n/);
    expect(secret.script).toContain("openssl rand -hex 32");
    const coturn = unit(plan, "service:coturn.service") as ServiceUnit;
    expect(coturn).toMatchObject({ enabled: true, running: true });
    expect(coturn.after).toEqual([
      "once:turn-secret",
      "service:turnserver.service",
      "service:iroh-relay.service",
    ]);
    // cmdeploy's chatmail-turn (1.8.0 and later) goes for good: stopped here, its files pruned.
    expect(unit(plan, "service:turnserver.service")).toMatchObject({ enabled: false, running: false });
    expect(coturn.restartOn).toEqual([`file:${PATHS.turnConfig}`, `file:${DROP_IN}`]);
    expect((unit(plan, "service:chatmaild.service") as ServiceUnit).after).toContain("once:turn-secret");
  });

  it("with turnServer false stops coturn before iroh-relay takes the STUN port back", () => {
    const plan = planFor({ turn_server: "false" });
    expect(unit(plan, "service:coturn.service")).toMatchObject({ enabled: false, running: false });
    expect(plan.units.some((u) => u.id === "once:turn-secret" || u.id === `file:${PATHS.turnConfig}`)).toBe(
      false,
    );
    const ids = plan.units.map((u) => u.id);
    expect(ids.indexOf("service:coturn.service")).toBeLessThan(ids.indexOf("service:iroh-relay.service"));
    expect((unit(plan, "service:iroh-relay.service") as ServiceUnit).after).toContain(
      "service:coturn.service",
    );
  });

  it("opens 3478 over UDP and TCP and the relay range with TURN, only iroh-relay's STUN without", () => {
    expect(publicPorts(configFor())).toMatchObject({
      udp: [3478],
      udpRanges: [{ first: 49152, last: 65535 }],
    });
    expect(publicPorts(configFor()).tcp).toContain(3478);
    const noTurn = publicPorts(configFor({ turn_server: "false" }));
    expect(noTurn).toMatchObject({ udp: [3478], udpRanges: [] });
    expect(noTurn.tcp).not.toContain(3478);
    expect(
      publicPorts(configFor({ turn_server: "false", iroh_relay: "https://iroh.example.net" })).udp,
    ).toEqual([]);
  });

  it.each(["49152", "65535-49152", "80-90", "49152-70000", "a-b", "49152 - 65535"])(
    "refuses turnRelayPorts %s, saying what is allowed",
    (value) => {
      expect(() => configFor({ turn_relay_ports: value })).toThrow(
        /turnRelayPorts: .* is not allowed; use a port range FIRST-LAST with 1024 <= FIRST <= LAST <= 65535/,
      );
    },
  );
});
