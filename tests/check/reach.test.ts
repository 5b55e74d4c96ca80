// Port and certificate rows: trusted for the domain, self-signed only when configured, expiry thresholds.
import { describe, expect, it } from "vitest";
import type { PeerCertificate } from "node:tls";
import { loadConfig } from "../../core/config";
import { EXPIRY_FAIL_DAYS, EXPIRY_WARN_DAYS, expiryRow, portRow } from "../../tools/check/reach";
import type { Handshake } from "../../tools/check/net";

const acme = loadConfig({ mailDomain: "chat.example.org", tlsMode: "acme" });
const selfSigned = loadConfig({ mailDomain: "chat.example.org", tlsMode: "self-signed" });
const NOW = Date.parse("2026-12-03T00:00:00Z");
const handshake = (days: number, authorized = true): Handshake => ({
  protocol: "TLSv1.3",
  cert: {
    valid_to: new Date(NOW + days * 86_400_000 + 3600_000).toUTCString(),
    subjectaltname: "DNS:chat.example.org",
  } as PeerCertificate,
  authorized,
  ...(authorized ? {} : { authorizationError: "SELF_SIGNED_CERT_IN_CHAIN" }),
});

describe("port rows", () => {
  it("passes a trusted certificate and fails an untrusted one in acme mode", () => {
    const good = portRow(acme, 993, "IMAP over TLS", handshake(60), NOW);
    expect(good.status).toBe("ok");
    expect(good.detail).toContain("certificate for chat.example.org, 60 days left");
    const bad = portRow(acme, 993, "IMAP over TLS", handshake(60, false), NOW);
    expect(bad.status).toBe("fail");
    expect(bad.detail).toContain("SELF_SIGNED_CERT_IN_CHAIN");
    expect(bad.advice).toContain("acmetool");
  });

  it("accepts a self-signed certificate when the relay is configured so", () => {
    expect(portRow(selfSigned, 465, "submission over TLS", handshake(60, false), NOW).status).toBe("ok");
  });

  it("fails a port that does not answer, naming the port", () => {
    const row = portRow(acme, 25, "SMTP with STARTTLS", new Error("connect ECONNREFUSED"), NOW);
    expect(row).toMatchObject({ status: "fail", check: "port 25 SMTP with STARTTLS" });
    expect(row.advice).toContain("TCP 25");
  });
});

describe("expiry row", () => {
  const row = (...days: number[]) =>
    expiryRow(
      acme,
      days.map((d, i) => ({ port: 443 + i, handshake: handshake(d) })),
      NOW,
    );
  it("judges the certificate that expires first", () => {
    expect(row(80, 60).status).toBe("ok");
    expect(row(80, EXPIRY_WARN_DAYS - 1).status).toBe("warn");
    const failing = row(80, EXPIRY_FAIL_DAYS - 1);
    expect(failing.status).toBe("fail");
    expect(failing.detail).toMatch(new RegExp(`^${EXPIRY_FAIL_DAYS - 1} days left \\(port 444`));
  });
});
