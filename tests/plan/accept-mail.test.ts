// acceptMail false ("mail off"): Postfix (its oneshot wrapper and the postfix@- instance that runs the master) and
// Dovecot are stopped and disabled; their files and checks and every other service are deployed as usual. The
// service step stops them when the value flips, keeps them stopped when their files change, fails when one is
// still active after the stop, and starts them again when the value flips back. Whatever lists the running units
// (the metrics facts file, the check tool) leaves them out meanwhile.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { planRelay, type Plan } from "../../core/plan";
import { PATHS } from "../../core/plan/facts";
import type { ServiceUnit, Step } from "../../core/plan/types";
import { parseFacts } from "../../daemons/metrics/system";
import { testAssets, text } from "./helpers";

const BASE = { mailDomain: "chat.example.org", tlsMode: "self-signed" };
const plan = (options: Record<string, string | number | boolean> = {}) =>
  planRelay(loadConfig({ ...BASE, ...options }), testAssets());
const on = plan();
const off = plan({ acceptMail: false });

const MAIL_SERVICES = ["postfix.service", "dovecot.service"];
const services = (p: Plan) => p.units.filter((u): u is ServiceUnit => u.kind === "service");
const service = (p: Plan, name: string) => services(p).find((u) => u.name === name);
const step = (p: Plan, id: string) => p.steps.find((s) => s.id === id)!;
/** The running units as the metrics facts file and the check tool (tools/check/target.ts) take them. */
const running = (p: Plan) => services(p).flatMap((u) => (u.running ? [u.name] : []));

/** Steps whose hash differs between two plans, or that only one of them has. */
function changed(a: Plan, b: Plan): string[] {
  const old = new Map(a.steps.map((s) => [s.id, s.hash]));
  const ids = new Set([...a.steps.map((s) => s.id), ...b.steps.map((s) => s.id)]);
  const now = new Map(b.steps.map((s) => [s.id, s.hash]));
  return [...ids].filter((id) => old.get(id) !== now.get(id)).sort();
}

describe("acceptMail", () => {
  it("runs and enables Postfix and Dovecot by default, with no unit for the Postfix instance", () => {
    for (const name of MAIL_SERVICES) {
      expect(service(on, name), name).toMatchObject({ running: true, enabled: true });
    }
    expect(service(on, "postfix@-.service")).toBeUndefined();
  });

  it("false stops and disables Postfix's wrapper and instance and Dovecot, and nothing else", () => {
    for (const name of [...MAIL_SERVICES, "postfix@-.service"]) {
      expect(service(off, name), name).toMatchObject({ running: false, enabled: false });
    }
    expect(service(off, "postfix@-.service")!.after).toEqual(["service:postfix.service"]);
    const others = (p: Plan) =>
      services(p)
        .filter((u) => !MAIL_SERVICES.includes(u.name) && u.name !== "postfix@-.service")
        .map((u) => [u.name, u.running, u.enabled]);
    expect(others(off)).toEqual(others(on));
    expect(running(off)).toEqual(expect.arrayContaining(["opendkim.service", "nginx.service"]));
  });

  it("false keeps every file, check and other step; only the mail services and the lists of units change", () => {
    expect(changed(on, off)).toEqual(
      [
        "service:postfix.service",
        "service:postfix@-.service",
        "service:dovecot.service",
        // The metrics facts file lists the running units; chatmaild restarts on it.
        `file:${PATHS.metricsFacts}`,
        "service:chatmaild.service",
        // Postfix and Dovecot leave the owned list's units (they are neither run nor enabled).
        "prune:unowned",
      ].sort(),
    );
    for (const id of [
      "file:/etc/postfix/main.cf",
      "check:postfix-config",
      "file:/etc/dovecot/dovecot.conf",
    ]) {
      expect(step(off, id), id).toEqual(step(on, id));
    }
  });

  it("true, set again after false, gives back every hash of the default plan", () => {
    expect(plan({ acceptMail: true }).steps).toEqual(on.steps);
  });

  it("false takes Postfix and Dovecot out of the running units the metrics and the check tool expect", () => {
    for (const p of [on, off]) expect(parseFacts(text(p, PATHS.metricsFacts)).units).toEqual(running(p));
    for (const name of MAIL_SERVICES) {
      expect(running(on)).toContain(name);
      expect(running(off)).not.toContain(name);
    }
    expect(running(off)).not.toContain("postfix@-.service");
  });

  it("false disables and stops in the service steps, which never enable, start or restart", () => {
    for (const id of ["service:postfix.service", "service:postfix@-.service", "service:dovecot.service"]) {
      const script = step(off, id).script;
      const name = id.slice("service:".length);
      expect(script, id).toContain(`systemctl disable ${name}`);
      expect(script, id).toContain(`systemctl stop ${name}`);
      expect(script, id).not.toMatch(/systemctl (enable|start|restart|reload)\b/);
    }
  });

  it("with mail off, a changed Postfix or Dovecot setting re-runs the service step, which stops again", () => {
    const postfixChange = plan({ acceptMail: false, maxSmtpConnections: 500 });
    expect(changed(off, postfixChange)).toEqual(
      ["file:/etc/postfix/master.cf", "check:postfix-config", "service:postfix.service"].sort(),
    );
    expect(step(postfixChange, "service:postfix.service").script).not.toMatch(/systemctl restart/);
    const dovecotChange = plan({ acceptMail: false, maxImapConnections: 500 });
    expect(changed(off, dovecotChange)).toContain("service:dovecot.service");
    expect(step(dovecotChange, "service:dovecot.service").script).not.toMatch(/systemctl restart/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The service step's script, run by sh with a stand-in systemctl that records its calls.

const dir = mkdtempSync(join(tmpdir(), "accept-mail-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let runs = 0;

/** Runs a step's script; `active` lists the units the stand-in systemctl reports active after any stop. */
function runStep(s: Step, active: string[] = []): { code: number; calls: string[]; stderr: string } {
  const run = join(dir, `run-${++runs}`);
  const bin = join(run, "bin");
  mkdirSync(bin, { recursive: true });
  const log = join(run, "calls");
  writeFileSync(log, "");
  writeFileSync(
    join(bin, "systemctl"),
    [
      "#!/bin/sh",
      `echo "$*" >>${log}`,
      `if [ "$1" = is-active ]; then for u in ${active.join(" ")}; do [ "$u" = "$3" ] && exit 0; done; exit 3; fi`,
      "exit 0",
      "",
    ].join("\n"),
  );
  writeFileSync(join(bin, "flock"), "#!/bin/sh\nexit 0\n");
  for (const f of ["systemctl", "flock"]) chmodSync(join(bin, f), 0o755);
  const script = s.script.replaceAll("/run/lock/", `${run}/`).replaceAll("/var/lib/chatmail-deploy", run);
  let code = 0;
  let stderr = "";
  try {
    execFileSync("sh", ["-c", script], { env: { PATH: `${bin}:/usr/bin:/bin` }, stdio: "pipe" });
  } catch (e) {
    code = (e as { status: number }).status;
    stderr = String((e as { stderr: Buffer }).stderr);
  }
  return { code, calls: readFileSync(log, "utf8").trim().split("\n"), stderr };
}

describe("a service step that flips", () => {
  it("from running to stopped: the hash changes, so it runs, and it disables, stops and checks the unit", () => {
    for (const name of MAIL_SERVICES) {
      const id = `service:${name}`;
      expect(step(off, id).hash, id).not.toBe(step(on, id).hash);
      const { code, calls } = runStep(step(off, id));
      expect(code, id).toBe(0);
      expect(calls, id).toEqual([
        "daemon-reload",
        `disable ${name}`,
        `stop ${name}`,
        `is-active --quiet ${name}`,
      ]);
    }
  });

  it("fails when the unit is still active after the stop, saying so", () => {
    const { code, stderr } = runStep(step(off, "service:postfix@-.service"), ["postfix@-.service"]);
    expect(code).toBe(1);
    expect(stderr).toContain("postfix@-.service is still active after systemctl stop");
  });

  it("from stopped to running: it enables and restarts the unit, which starts it", () => {
    for (const name of MAIL_SERVICES) {
      const { code, calls } = runStep(step(on, `service:${name}`));
      expect(code, name).toBe(0);
      expect(calls, name).toEqual(["daemon-reload", `enable ${name}`, `restart ${name}`]);
    }
  });
});
