// The DNS rows' judgement: each record against every authoritative server's answer, in the same value form.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { relayRecords, type DnsRecord } from "../../core/dns";
import {
  answerMatches,
  canonicalAddress,
  expectedValue,
  recordCheck,
  recordRow,
  reverseName,
} from "../../tools/check/dns";

const config = loadConfig({ mailDomain: "chat.example.org", tlsMode: "acme" });
const records = relayRecords(config, {
  ipv4: "192.0.2.10",
  ipv6: "2001:db8::10",
  dkimPublicKey: "MIIBIjANBgkq",
  acmeAccountUrl: "https://acme.example.net/acct/1",
});
const find = (type: string, prefix = "") =>
  records.find((r) => r.type === type && r.name.startsWith(prefix)) as DnsRecord;
const ns = { name: "ns1.example.net", addr: "192.0.2.53" };
const ns2 = { name: "ns2.example.net", addr: "192.0.2.54" };

describe("values", () => {
  it("writes IPv6 addresses in one form", () => {
    expect(canonicalAddress("2001:DB8::10")).toBe("2001:db8:0:0:0:0:0:10");
    expect(canonicalAddress("2001:0db8:0:0:0:0:0:0010")).toBe("2001:db8:0:0:0:0:0:10");
    expect(canonicalAddress("::1")).toBe("0:0:0:0:0:0:0:1");
    expect(canonicalAddress("192.0.2.1")).toBe("192.0.2.1");
  });

  it("names the reverse zones of both families", () => {
    expect(reverseName("192.0.2.10")).toBe("10.2.0.192.in-addr.arpa");
    expect(reverseName("2001:db8::10")).toBe(
      "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
  });

  it("joins TXT strings and drops final dots", () => {
    expect(expectedValue(find("MX"))).toBe("10 chat.example.org");
    expect(expectedValue(find("TXT", "opendkim."))).toMatch(/^v=DKIM1;k=rsa;p=MIIBIjANBgkq;/);
    expect(expectedValue(find("CAA"))).toBe(
      "0 issue letsencrypt.org;accounturi=https://acme.example.net/acct/1",
    );
  });
});

describe("answers", () => {
  it("needs exactly the address, not one among others", () => {
    const a = find("A");
    expect(answerMatches(a, { values: ["192.0.2.10"] })).toBe(true);
    expect(answerMatches(a, { values: ["192.0.2.10", "192.0.2.99"] })).toBe(false);
    expect(answerMatches(a, { error: "ENODATA" })).toBe(false);
  });

  it("lets other TXT records share the name but not a second SPF record", () => {
    const spf = records.find((r) => r.type === "TXT" && r.name === "chat.example.org")!;
    expect(answerMatches(spf, { values: ["google-site-verification=x", "v=spf1 a ~all"] })).toBe(true);
    expect(answerMatches(spf, { values: ["v=spf1 a ~all", "v=spf1 mx -all"] })).toBe(false);
  });

  it("accepts the pinned CAA among other CAA records", () => {
    const caa = find("CAA");
    expect(answerMatches(caa, { values: ["0 iodef mailto:x@example.org", expectedValue(caa)] })).toBe(true);
    expect(answerMatches(caa, { values: ["0 issue letsencrypt.org"] })).toBe(false);
  });
});

describe("rows", () => {
  it("names DKIM for what it is and passes when every server agrees", () => {
    const dkim = find("TXT", "opendkim.");
    expect(recordCheck(dkim)).toBe("DKIM opendkim._domainkey.chat.example.org");
    const row = recordRow(
      dkim,
      [ns, ns2].map((server) => ({ server, answer: { values: [expectedValue(dkim)] } })),
      "",
    );
    expect(row).toMatchObject({ status: "ok", group: "dns" });
    expect(row.detail).toContain("matches the DKIM key on the server");
  });

  it("fails a required record that one server has wrong, and shows what that server has", () => {
    const dkim = find("TXT", "opendkim.");
    const row = recordRow(
      dkim,
      [
        { server: ns, answer: { values: [expectedValue(dkim)] } },
        { server: ns2, answer: { values: ["v=DKIM1;k=rsa;p=OLDKEY"] } },
      ],
      "publish it",
    );
    expect(row.status).toBe("fail");
    expect(row.detail).toContain('ns2.example.net (192.0.2.54) has "v=DKIM1;k=rsa;p=OLDKEY"');
    expect(row.detail).not.toContain("ns1.example.net");
    expect(row.advice).toBe("publish it");
  });

  it("only warns about a missing recommended record", () => {
    const srv = find("SRV");
    const row = recordRow(srv, [{ server: ns, answer: { error: "ENODATA" } }], "publish it");
    expect(row).toMatchObject({ status: "warn" });
    expect(row.detail).toContain("has nothing");
  });
});
