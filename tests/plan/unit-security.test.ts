// The service units the plan writes are hardened (docs/hardening.md): every one has a committed ceiling for its
// `systemd-analyze security` exposure score, and where this machine has systemd-analyze the rendered units are
// scored offline against those ceilings (the e2e suite scores them again on the booted Debian 12 server).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Plan } from "../../core/plan";
import { exposureScore, ownServiceUnits, unitSecurityCeilings } from "../e2e/suite/unitSecurity";
import { planFor, text, writeTree } from "./helpers";

/** Plans that between them write every service unit: the default, with mtail, with external TLS files. */
const PLANS: Plan[] = [
  planFor(),
  planFor({ mtail_address: "127.0.0.1" }),
  planFor({ tls_external_cert_and_key: "/etc/ssl/relay.pem /etc/ssl/relay.key" }),
];
const UNITS = [...new Set(PLANS.flatMap(ownServiceUnits))].sort();
const unitText = (unit: string) => {
  const plan = PLANS.find((p) => ownServiceUnits(p).includes(unit))!;
  return text(plan, `/etc/systemd/system/${unit}`);
};
const hasSystemdAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("service unit hardening", () => {
  it("has a ceiling for exactly the service units the plan writes", () => {
    expect(Object.keys(unitSecurityCeilings()).sort()).toEqual(UNITS);
  });

  it.each(UNITS)(
    "%s filters system calls, drops capabilities it does not need and has a memory ceiling",
    (unit) => {
      const t = unitText(unit);
      for (const line of [
        "NoNewPrivileges=yes",
        "SystemCallFilter=@system-service",
        // The redirector drops its own capabilities at start, so only it may make privileged calls.
        unit === "acmetool-redirector.service"
          ? "SystemCallFilter=~@resources"
          : "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        "SystemCallArchitectures=native",
        "ProtectProc=invisible",
        "ProtectSystem=strict",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "UMask=0077",
      ])
        expect(t, `${unit}: ${line}`).toContain(`\n${line}\n`);
      expect(t).toMatch(/\nCapabilityBoundingSet=(CAP_NET_BIND_SERVICE)?\n/);
      expect(t).toMatch(/\nMemoryMax=\d+[MG]\n/);
      expect(t).toMatch(/\nRestrictAddressFamilies=/);
    },
  );

  it("keeps /proc/meminfo and /proc/loadavg visible to the Node units (doveauth's resource check, Node's heap)", () => {
    for (const unit of ["chatmaild.service", "chatmail-expire.service", "chatmail-fsreport.service"]) {
      expect(unitText(unit), unit).not.toMatch(/^ProcSubset=/m);
      // V8's JIT writes executable memory.
      expect(unitText(unit), unit).not.toMatch(/^MemoryDenyWriteExecute=/m);
    }
  });

  it("lets chatmaild reach the Internet (push notifications) and confines the loopback-only redirector", () => {
    expect(unitText("chatmaild.service")).not.toMatch(/^IPAddressDeny=/m);
    expect(unitText("acmetool-redirector.service")).toContain(
      "IPAddressDeny=any\nIPAddressAllow=localhost\n",
    );
    expect(unitText("acmetool-redirector.service")).toContain("User=daemon\n");
    expect(unitText("acmetool-redirector.service")).not.toMatch(/^ExecStart=.*--service.uid/m);
  });

  it.skipIf(!hasSystemdAnalyze)(
    "scores each unit offline at or below its ceiling (systemd-analyze security --offline)",
    () => {
      const root = mkdtempSync(join(tmpdir(), "unit-security-"));
      dirs.push(root);
      for (const plan of PLANS) writeTree(plan, root, (p) => p.startsWith("/etc/systemd/system/"));
      const ceilings = unitSecurityCeilings();
      const scores = Object.fromEntries(
        UNITS.map((unit) => {
          const r = spawnSync(
            "systemd-analyze",
            ["security", "--offline=true", `--root=${root}`, "--no-pager", unit],
            {
              cwd: join(root, "etc/systemd/system"),
              encoding: "utf8",
            },
          );
          return [unit, exposureScore(r.stdout, unit)];
        }),
      );
      for (const unit of UNITS) expect(scores[unit], unit).toBeLessThanOrEqual(ceilings[unit]);
    },
  );
});
