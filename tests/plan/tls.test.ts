import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { RUN_LOG } from "../../core/plan/steps";
import { PATHS } from "../../core/plan/facts";
import type { OnceUnit } from "../../core/plan/types";
import { planFor, text, unit } from "./helpers";

const ids = (ini: Record<string, string>) => planFor(ini).units.map((u) => u.id);

describe("tls part", () => {
  it("asks acmeDirectoryUrl for one ECDSA certificate covering the domain, www and mta-sts", () => {
    const plan = planFor({ acme_directory_url: "https://ca.test:14000/dir", acme_email: "ops@example.org" });
    expect(text(plan, "/var/lib/acme/conf/target")).toMatch(/provider: https:\/\/ca\.test:14000\/dir\n/);
    expect(text(plan, "/var/lib/acme/conf/target")).toContain("type: ecdsa");
    expect(text(plan, "/var/lib/acme/conf/responses")).toContain('"acme-enter-email": "ops@example.org"');
    expect(text(plan, "/var/lib/acme/desired/chat.example.org")).toContain(
      "  names:\n  - chat.example.org\n  - www.chat.example.org\n  - mta-sts.chat.example.org\n",
    );
  });

  it("runs the redirector on loopback port 402 where nginx forwards challenges", () => {
    const unitFile = text(planFor(), "/etc/systemd/system/acmetool-redirector.service");
    expect(unitFile).toContain(`--bind=127.0.0.1:402 --path=${PATHS.acmeChallengeDir}`);
    expect(text(planFor(), "/var/lib/acme/conf/target")).toContain(`- ${PATHS.acmeChallengeDir}`);
  });

  it("makes a self-signed certificate once, for all three names", () => {
    const once = unit(planFor({ tls_mode: "self-signed" }), "once:self-signed-certificate") as OnceUnit;
    expect(once.creates).toBe(PATHS.selfSignedCert);
    expect(once.script).toContain(
      "subjectAltName=DNS:chat.example.org,DNS:www.chat.example.org,DNS:mta-sts.chat.example.org",
    );
    expect(ids({ tls_mode: "self-signed" }).filter((id) => id.includes("acme"))).toEqual([]);
  });

  it("checks external files before the deploy and reloads the services when they change", () => {
    const ini = { tls_external_cert_and_key: "/etc/ssl/relay.pem /etc/ssl/relay.key" };
    const plan = planFor(ini);
    expect(unit(plan, "check:tls-external-files").phase).toBe("preflight");
    const path = text(plan, "/etc/systemd/system/tls-cert-reload.path");
    expect(path).toContain("PathChanged=/etc/ssl/relay.pem");
    expect(path).toContain("PathChanged=/etc/ssl/relay.key");
    expect(text(plan, "/etc/postfix/main.cf")).toContain("smtpd_tls_cert_file = /etc/ssl/relay.pem");
    expect(text(plan, "/etc/dovecot/dovecot.conf")).toContain("ssl_key = </etc/ssl/relay.key");
    expect(text(plan, "/etc/nginx/nginx.conf")).toContain("ssl_certificate /etc/ssl/relay.pem;");
  });
});

describe("self-signed certificate step", () => {
  it("makes a P-256 certificate for the three names, once", () => {
    const dir = mkdtempSync(join(tmpdir(), "plan-tls-"));
    try {
      const plan = planFor({ tls_mode: "self-signed" });
      const step = plan.steps.find((s) => s.id === "once:self-signed-certificate")!;
      // Run the real script with the certificate paths and the run log moved into the temporary directory.
      const script = step.script
        .split(PATHS.selfSignedCert)
        .join(join(dir, "cert.pem"))
        .split(PATHS.selfSignedKey)
        .join(join(dir, "key.pem"))
        .split(RUN_LOG)
        .join(join(dir, "runs.log"))
        .split("/var/lib/chatmail-deploy")
        .join(dir);
      execFileSync("sh", ["-c", script]);
      const cert = execFileSync("openssl", ["x509", "-in", join(dir, "cert.pem"), "-noout", "-text"], {
        encoding: "utf8",
      });
      expect(cert).toContain("DNS:chat.example.org, DNS:www.chat.example.org, DNS:mta-sts.chat.example.org");
      expect(cert).toContain("NIST CURVE: P-256");
      expect(statSync(join(dir, "key.pem")).mode & 0o777).toBe(0o600);
      const before = readFileSync(join(dir, "cert.pem"));
      execFileSync("sh", ["-c", script]);
      expect(readFileSync(join(dir, "cert.pem"))).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
