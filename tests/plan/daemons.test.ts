import { describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { CHATMAILD_NODE_FLAGS, SERVICES } from "../../core/server";
import { planFor, text } from "./helpers";

const run = `${PATHS.node} ${CHATMAILD_NODE_FLAGS.join(" ")} ${PATHS.daemonBundle} ${PATHS.chatmailIni}`;

describe("daemons part", () => {
  it("runs every daemon of the bundle in one process (one Node runtime for the memory budget), as vmail", () => {
    const plan = planFor();
    const chatmaild = text(plan, "/etc/systemd/system/chatmaild.service");
    expect(chatmaild).toContain(`ExecStart=${run} ${SERVICES.join(" ")} --turn-secret %d/turn-secret\n`);
    expect(chatmaild).toContain(`LoadCredential=turn-secret:${PATHS.turnSecret}\n`);
    const noTurn = text(planFor({ turn_server: "false" }), "/etc/systemd/system/chatmaild.service");
    expect(noTurn).toContain(`ExecStart=${run} ${SERVICES.join(" ")}\n`);
    expect(noTurn).not.toContain("LoadCredential");
    expect(chatmaild).toContain("--max-semi-space-size=3");
    expect(chatmaild).toContain("RuntimeDirectory=doveauth chatmail-metadata chatmail-lastlogin\n");
    expect(chatmaild).toContain("User=vmail\n");
    expect(plan.units.some((u) => u.id === "file:/etc/systemd/system/filtermail.service")).toBe(false);
  });

  it("lets the daemons write below mailboxesDir only", () => {
    const plan = planFor({ mailboxes_dir: "/srv/mail" });
    expect(text(plan, "/etc/systemd/system/chatmaild.service")).toContain("ReadWritePaths=/srv/mail\n");
    expect(text(plan, "/etc/systemd/system/chatmail-expire.service")).toContain("ReadWritePaths=/srv/mail\n");
  });

  it("installs the bundle and expires mail daily by timer", () => {
    const plan = planFor();
    expect(text(plan, PATHS.daemonBundle)).toBe("// test bundle\n");
    expect(text(plan, "/etc/systemd/system/chatmail-expire.service")).toContain(`ExecStart=${run} expire\n`);
    expect(text(plan, "/etc/systemd/system/chatmail-expire.timer")).toContain("OnCalendar=*-*-* 00:02:00");
    expect(plan.units.some((u) => u.id === "service:chatmail-expire.service")).toBe(false);
  });

  it("runs mtail on mtailAddress only when it is set", () => {
    expect(planFor().units.some((u) => u.id === "file:/etc/systemd/system/mtail.service")).toBe(false);
    expect(text(planFor({ mtail_address: "10.0.0.5" }), "/etc/systemd/system/mtail.service")).toContain(
      "--address=10.0.0.5 --port=3903",
    );
  });
});

describe("daemons part on a relay moved from cmdeploy", () => {
  it("stops cmdeploy's daemon units before starting its own", () => {
    const plan = planFor();
    const chatmaild = plan.steps.find((s) => s.id === "service:chatmaild.service")!;
    for (const legacy of [
      "doveauth.service",
      "chatmail-metadata.service",
      "lastlogin.service",
      "filtermail.service",
      "filtermail-incoming.service",
    ]) {
      const step = plan.steps.find((s) => s.id === `service:${legacy}`)!;
      expect(step.script).toContain(`systemctl stop ${legacy}`);
      expect(step.script).not.toContain("restart");
      expect(chatmaild.dependsOn).toContain(step.id);
    }
  });
});
