// metricsAddress in the plan: chatmaild's Prometheus listener is on by default on 127.0.0.1, on the address the
// operator sets, and off with "" (no ini value, no facts file, no port claim, the unit's plain sandbox).
import { describe, expect, it } from "vitest";
import { loadConfig, renderChatmailIni } from "../../core/config";
import { parseDaemonConfig } from "../../core/config/daemon";
import { PATHS, PORTS, publicPorts } from "../../core/plan/facts";
import { portClaims } from "../../core/plan/parts/preflight";
import type { ServiceUnit } from "../../core/plan/types";
import { parseFacts } from "../../daemons/metrics/system";
import { configFor, fileUnits, planFor, text, unit } from "./helpers";

const UNIT = "/etc/systemd/system/chatmaild.service";
const chatmaild = (ini: Record<string, string> = {}) =>
  unit(planFor(ini), "service:chatmaild.service") as ServiceUnit;

describe("metricsAddress", () => {
  it("defaults to 127.0.0.1, which chatmail.ini carries to the daemons", () => {
    const config = configFor();
    expect(config.metricsAddress).toBe("127.0.0.1");
    const ini = text(planFor(), PATHS.chatmailIni);
    expect(ini).toContain("\nmetrics_address = 127.0.0.1\n");
    expect(parseDaemonConfig(ini).config.metricsAddress).toBe("127.0.0.1");
  });

  it("is an IP address or empty; anything else is refused with the option's name", () => {
    expect(configFor({ metrics_address: "10.0.0.5" }).metricsAddress).toBe("10.0.0.5");
    expect(configFor({ metrics_address: "fd00::5" }).metricsAddress).toBe("fd00::5");
    expect(loadConfig({ mailDomain: "chat.example.org", metricsAddress: "" }).metricsAddress).toBe("");
    for (const bad of ["metrics.example.org", "10.0.0.256", "127.0.0.1:9103", "0.0.0.0 x"]) {
      expect(() => configFor({ metrics_address: bad }), bad).toThrow(
        /metricsAddress: .* is not an IP address/,
      );
    }
  });

  it("writes the listener's address, its port claim, ready check and the facts file when set", () => {
    const plan = planFor({ metrics_address: "10.8.0.1" });
    expect(text(plan, PATHS.chatmailIni)).toContain("\nmetrics_address = 10.8.0.1\n");
    expect(chatmaild({ metrics_address: "10.8.0.1" }).ready).toContain(
      `ss -Hltn 'sport = :${PORTS.chatmaildMetrics}' | grep -q .`,
    );
    expect(chatmaild({ metrics_address: "10.8.0.1" }).restartOn).toContain(`file:${PATHS.metricsFacts}`);
    expect(portClaims(configFor({ metrics_address: "10.8.0.1" }))).toContainEqual({
      proto: "tcp",
      port: 9103,
      owners: ["node", "nodejs", "filtermail"],
    });
    // An address other than loopback must be the server's own, like mtailAddress.
    expect(plan.units.map((u) => u.id)).toContain("check:metrics-address");
    expect(planFor().units.map((u) => u.id)).not.toContain("check:metrics-address");
  });

  it("lists every running service of the plan and the served certificate in the facts file", () => {
    const plan = planFor({ tls_external_cert_and_key: "/etc/tls/fullchain.pem /etc/tls/key.pem" });
    const facts = parseFacts(text(plan, PATHS.metricsFacts));
    const running = plan.units.flatMap((u) => (u.kind === "service" && u.running ? [u.name] : []));
    expect(facts.units).toEqual(running);
    expect(facts.units).toEqual(
      expect.arrayContaining(["chatmaild.service", "postfix.service", "dovecot.service"]),
    );
    expect(facts.units).not.toContain("mtail.service"); // stopped without mtailAddress
    expect(facts.tlsCert).toBe("/etc/tls/fullchain.pem");
    expect(parseFacts(text(planFor({ mtail_address: "127.0.0.1" }), PATHS.metricsFacts)).units).toContain(
      "mtail.service",
    );
  });

  it("gives chatmaild the postdrop group (Postfix's showq socket) only while metrics are on", () => {
    const on = text(planFor(), UNIT);
    expect(on).toContain("\nSupplementaryGroups=postdrop\n");
    expect(on).toContain("the metrics on 127.0.0.1:9103. No\n");
    const off = text(planFor({ metrics_address: "" }), UNIT);
    expect(off).not.toContain("SupplementaryGroups");
    expect(off).not.toContain("metrics");
    for (const unit of [on, off])
      expect(unit).toContain("\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n");
  });

  it('is off with "": no ini value, no listener check, no facts file, no port claim', () => {
    const plan = planFor({ metrics_address: "" });
    expect(text(plan, PATHS.chatmailIni)).toMatch(/\nmetrics_address = \n/);
    expect(parseDaemonConfig(text(plan, PATHS.chatmailIni)).config.metricsAddress).toBe("");
    expect(fileUnits(plan).map((f) => f.path)).not.toContain(PATHS.metricsFacts);
    expect(chatmaild({ metrics_address: "" }).ready).not.toContain(`:${PORTS.chatmaildMetrics}'`);
    expect(chatmaild({ metrics_address: "" }).restartOn).not.toContain(`file:${PATHS.metricsFacts}`);
    expect(portClaims(configFor({ metrics_address: "" })).map((c) => c.port)).not.toContain(9103);
    expect(renderChatmailIni(configFor({ metrics_address: "" }))).not.toContain("metrics_address = 127");
  });

  it("never opens the metrics port in the firewall, whatever the address", () => {
    for (const address of ["127.0.0.1", "203.0.113.7", ""]) {
      expect(publicPorts(configFor({ metrics_address: address })).tcp).not.toContain(PORTS.chatmaildMetrics);
    }
  });
});
