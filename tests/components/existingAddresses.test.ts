// The A and AAAA records of a server the operator already has, for each way the config names it, under the Pulumi
// mock runtime. The mock's server answers the address read-back with SERVER_IP_ADDR (203.0.113.10 and
// 2001:db8:7::10, and a private Docker bridge), through the real script.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { Relay } from "../../components/relay";
import { byType, findCreated, mocks, plain, testAssets, valueOf } from "./helpers";

const base = {
  mailDomain: "chat.example.org",
  hostProvider: "existing",
  sshPrivateKey: "PRIVATE-KEY-SENTINEL",
  dnsProvider: "none",
  tlsMode: "self-signed",
};
const NAME = "relay.example.net";
const CASES = {
  byName: { hostAddress: NAME },
  byIpv4: { hostAddress: "198.51.100.7" },
  byIpv6: { hostAddress: "2001:db8:99::5" },
  given: { hostAddress: NAME, hostIpv4: "192.0.2.44", hostIpv6: "2001:db8:44::1" },
  givenIpv4: { hostAddress: NAME, hostIpv4: "192.0.2.44" },
  noIpv6ByName: { hostAddress: NAME, disableIpv6: true },
  noIpv6ByIpv4: { hostAddress: "198.51.100.7", disableIpv6: true },
  cloudflare: { hostAddress: NAME, dnsProvider: "cloudflare", cloudflareZoneId: "0".repeat(32) },
} as const;
type Case = keyof typeof CASES;

const relays = new Map<Case, Relay>();
const zones = new Map<Case, string>();

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, "chatmail-relay", "test", false);
  const assets = testAssets();
  for (const [name, settings] of Object.entries(CASES) as [Case, Record<string, unknown>][]) {
    const config = loadConfig({ ...base, ...settings } as Record<string, string | boolean>);
    relays.set(
      name,
      new Relay(name, { config, assets, sshPrivateKey: pulumi.secret("PRIVATE-KEY-SENTINEL") }),
    );
  }
  for (const [name, relay] of relays) zones.set(name, await valueOf(relay.zoneFile));
  await pulumi.runtime.disconnect();
});

const readBack = (c: Case) =>
  byType("command:remote:Command").find((r) => r.name === `${c}-host-read-addresses`);
/** Which families the read-back asks for, from its script. */
const asked = (c: Case) => {
  const script = readBack(c)?.inputs.create as string | undefined;
  if (script === undefined) return "none";
  return [/want4=1/.test(script) ? "ipv4" : "", /want6=1/.test(script) ? "ipv6" : ""]
    .filter(Boolean)
    .join("+");
};
/** The zone file's address records, as "TYPE address". */
const addressRecords = (c: Case) =>
  [...zones.get(c)!.matchAll(/^chat\.example\.org\.\s+\d+ IN (A|AAAA)\s+(\S+)$/gm)].map(
    (m) => `${m[1]} ${m[2]}`,
  );

describe("ExistingHost addresses", () => {
  it.each<[Case, string, string[]]>([
    ["byName", "ipv4+ipv6", ["A 203.0.113.10", "AAAA 2001:db8:7::10"]],
    ["byIpv4", "ipv6", ["A 198.51.100.7", "AAAA 2001:db8:7::10"]],
    ["byIpv6", "none", ["AAAA 2001:db8:99::5"]],
    ["given", "none", ["A 192.0.2.44", "AAAA 2001:db8:44::1"]],
    ["givenIpv4", "ipv6", ["A 192.0.2.44", "AAAA 2001:db8:7::10"]],
    ["noIpv6ByName", "ipv4", ["A 203.0.113.10"]],
    ["noIpv6ByIpv4", "none", ["A 198.51.100.7"]],
  ])("%s: reads back %s; the zone file has %j", (c, families, records) => {
    expect(asked(c)).toBe(families);
    expect(addressRecords(c)).toEqual(records);
  });

  it("exports the addresses it found, and says whether there is IPv6", async () => {
    expect(await valueOf(relays.get("byName")!.ipv4)).toBe("203.0.113.10");
    expect(await valueOf(relays.get("byName")!.ipv6)).toBe("2001:db8:7::10");
    expect(relays.get("byName")!.hasIpv6).toBe(true);
    expect(relays.get("noIpv6ByName")!.hasIpv6).toBe(false);
    expect(await valueOf(relays.get("noIpv6ByName")!.ipv6)).toBeUndefined();
  });

  it("reads over the host's own connection, once per server, before and apart from the configuration", () => {
    const read = readBack("byName")!;
    expect(plain(read.inputs.connection)).toMatchObject({ host: NAME, port: 22, user: "root" });
    expect(plain(read.inputs.triggers)).toEqual([`existing:${NAME}`]);
    expect(read.inputs.create).toContain("ip -o addr show scope global");
    // It waits for no configuration step, so it fails (if it does) before the server is changed much.
    expect(read.dependencies).toEqual([]);
  });

  it("creates every Cloudflare address record only from the read-back's output", () => {
    const urn = readBack("cloudflare")!.urn!;
    for (const type of ["A", "AAAA"]) {
      const record = findCreated(
        "cloudflare:index/dnsRecord:DnsRecord",
        `cloudflare-dns-${type}:chat.example.org`,
      );
      expect(record.dependencies, type).toContain(urn);
      expect(record.inputs.content, type).toBe(type === "A" ? "203.0.113.10" : "2001:db8:7::10");
    }
  });
});
