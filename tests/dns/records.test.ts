import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { dkimValue, mtaStsId, rdata, relayRecords, splitTxt, zoneFile, type DnsRecord } from "../../core/dns";

const config = loadConfig({ mailDomain: "chat.example.org" });
// A 2048-bit RSA SubjectPublicKeyInfo is 392 base64 characters.
const dkimKey = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x".repeat(392 - 44);
const facts = {
  ipv4: "203.0.113.10",
  ipv6: "2001:db8::1",
  dkimPublicKey: dkimKey,
  acmeAccountUrl: "https://acme.example/acct/42",
};
const lines = (records: DnsRecord[]) => records.map((r) => `${r.name} ${r.type} ${rdata(r)}`);

describe("relayRecords", () => {
  it("gives the full record set for a sample domain", () => {
    expect(lines(relayRecords(config, facts))).toEqual([
      "chat.example.org A 203.0.113.10",
      "chat.example.org AAAA 2001:db8::1",
      "chat.example.org MX 10 chat.example.org.",
      `_mta-sts.chat.example.org TXT "v=STSv1; id=${mtaStsId(config)}"`,
      "mta-sts.chat.example.org CNAME chat.example.org.",
      "www.chat.example.org CNAME chat.example.org.",
      `opendkim._domainkey.chat.example.org TXT ${splitTxt(dkimValue(dkimKey))
        .map((s) => `"${s}"`)
        .join(" ")}`,
      'chat.example.org TXT "v=spf1 a ~all"',
      '_dmarc.chat.example.org TXT "v=DMARC1;p=reject;adkim=s;aspf=s"',
      'chat.example.org CAA 0 issue "letsencrypt.org;accounturi=https://acme.example/acct/42"',
      '_adsp._domainkey.chat.example.org TXT "dkim=discardable"',
      "_submission._tcp.chat.example.org SRV 0 1 587 chat.example.org.",
      "_submissions._tcp.chat.example.org SRV 0 1 465 chat.example.org.",
      "_imap._tcp.chat.example.org SRV 0 1 143 chat.example.org.",
      "_imaps._tcp.chat.example.org SRV 0 1 993 chat.example.org.",
    ]);
  });

  it("splits the DKIM value into strings of at most 255 characters that join to the whole value", () => {
    const dkim = relayRecords(config, facts).find((r) => r.name.startsWith("opendkim._domainkey"))!;
    if (dkim.type !== "TXT") throw new Error("DKIM must be TXT");
    expect(dkim.strings.length).toBe(2);
    expect(dkim.strings[0].length).toBe(255);
    expect(dkim.strings.every((s) => s.length <= 255)).toBe(true);
    expect(dkim.strings.join("")).toBe(`v=DKIM1;k=rsa;p=${dkimKey};s=email;t=s`);
  });

  it("leaves out what is not known yet (addresses, DKIM key, ACME account)", () => {
    const types = relayRecords(config, {}).map((r) => `${r.type} ${r.name}`);
    expect(types).not.toContain("A chat.example.org");
    expect(types.some((t) => t.includes("_domainkey.chat") && t.includes("opendkim"))).toBe(false);
    expect(types.some((t) => t.startsWith("CAA"))).toBe(false);
  });

  it("has no AAAA record for an IPv4-only relay", () => {
    const v4only = loadConfig({ mailDomain: "chat.example.org", disableIpv6: true });
    expect(relayRecords(v4only, facts).some((r) => r.type === "AAAA")).toBe(false);
  });

  it("has no MTA-STS records and no CAA without ACME certificates", () => {
    const selfSigned = loadConfig({ mailDomain: "chat.example.org", tlsMode: "self-signed" });
    const names = relayRecords(selfSigned, facts).map((r) => r.name);
    expect(names).not.toContain("_mta-sts.chat.example.org");
    expect(names).not.toContain("mta-sts.chat.example.org");
    expect(relayRecords(selfSigned, facts).some((r) => r.type === "CAA")).toBe(false);
  });

  it("names the test CA in CAA when the ACME directory is not Let's Encrypt", () => {
    const pebble = loadConfig({
      mailDomain: "chat.example.org",
      acmeDirectoryUrl: "https://pebble.test:14000/dir",
    });
    const caa = relayRecords(pebble, { ...facts, acmeAccountUrl: "" }).find((r) => r.type === "CAA")!;
    expect(rdata(caa)).toBe('0 issue "pebble.test"');
  });

  it("derives the MTA-STS id from the policy, so it changes only when the policy does", () => {
    expect(mtaStsId(config)).toMatch(/^[0-9a-f]{32}$/);
    expect(mtaStsId(loadConfig({ mailDomain: "chat.example.org", maxUserSendPerMinute: 5 }))).toBe(
      mtaStsId(config),
    );
    expect(mtaStsId(loadConfig({ mailDomain: "other.example.org" }))).not.toBe(mtaStsId(config));
  });
});

describe("zoneFile", () => {
  it("renders BIND lines in required and recommended sections with a comment per record", () => {
    const text = zoneFile(config, relayRecords(config, facts));
    expect(text).toContain("; Required DNS entries");
    expect(text).toContain("; Recommended DNS entries");
    expect(text.indexOf("IN MX")).toBeLessThan(text.indexOf("; Recommended"));
    expect(text.indexOf("IN SRV")).toBeGreaterThan(text.indexOf("; Recommended"));
    expect(text).toMatch(/^chat\.example\.org\.\s+3600 IN MX\s+10 chat\.example\.org\.$/m);
    const recordLines = text.split("\n").filter((l) => / IN /.test(l));
    expect(recordLines.length).toBe(15);
    for (const l of recordLines) expect(text.split("\n")[text.split("\n").indexOf(l) - 1]).toMatch(/^; /);
  });

  it("says which records are still missing before the first deploy", () => {
    expect(zoneFile(config, relayRecords(config, {}))).toMatch(
      /Not yet known, add after deploying: A\/AAAA.*DKIM/,
    );
  });
});
