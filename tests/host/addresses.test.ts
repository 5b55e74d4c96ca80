// The addresses of an existing host: the IP rules (core/ip.ts), the options that hold them, which families are
// read back, and the read-back script itself, run by sh against real `ip -o addr show scope global` output.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../core/config";
import {
  existingHostAddresses,
  parseReadAddresses,
  readAddressesScript,
  type Families,
} from "../../core/host/addresses";
import { ipFamily, ipv4NotPublic, ipv6NotPublic, parseIpv6 } from "../../core/ip";
import { runWithIp } from "./server";

const errorOf = (raw: Record<string, string | boolean>): string => {
  try {
    loadConfig({ mailDomain: "chat.example.org", hostProvider: "existing", ...raw });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("IP literals", () => {
  it.each([
    ["203.0.113.10", 4],
    ["1.1.1.1", 4],
    ["2a01:4f8:c012:abcd::1", 6],
    ["::", 6],
    ["1:2:3:4:5:6:7:8", 6],
    ["1:2:3:4:5:6:7::", 6],
    ["relay.example.net", undefined],
    ["203.0.113.010", undefined],
    ["203.0.113.256", undefined],
    ["203.0.113", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["1::2::3", undefined],
    [":1::", undefined],
    ["12345::1", undefined],
    ["2001:db8::1/64", undefined],
    ["fe80::1%eth0", undefined],
  ])("%s is of family %s", (text, family) => {
    expect(ipFamily(text)).toBe(family);
  });

  it("expands :: to the missing groups", () => {
    expect(parseIpv6("2001:db8::10")).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]);
  });

  it.each([
    ["203.0.113.10", undefined],
    ["8.8.8.8", undefined],
    ["172.32.0.1", undefined],
    ["100.128.0.1", undefined],
    ["10.1.2.3", /private address \(10\.0\.0\.0\/8\)/],
    ["172.16.0.1", /private address \(172\.16\.0\.0\/12\)/],
    ["172.31.255.255", /private address \(172\.16\.0\.0\/12\)/],
    ["192.168.1.1", /private address \(192\.168\.0\.0\/16\)/],
    ["100.64.0.1", /carrier-grade NAT address \(100\.64\.0\.0\/10\)/],
    ["127.0.0.1", /loopback address/],
    ["169.254.1.1", /link-local address/],
    ["0.0.0.0", /'this network'/],
    ["224.0.0.1", /multicast or reserved/],
    ["255.255.255.255", /multicast or reserved/],
  ])("IPv4 %s: %s", (text, problem) => {
    if (problem === undefined) expect(ipv4NotPublic(text)).toBeUndefined();
    else expect(ipv4NotPublic(text)).toMatch(problem);
  });

  it.each([
    ["2001:db8::10", true],
    ["2a01:4f8:c012:abcd::1", true],
    ["3fff:ffff::1", true],
    ["fd00::2", false],
    ["fc00::1", false],
    ["fe80::1", false],
    ["ff02::1", false],
    ["::1", false],
    ["::ffff:203.0.113.10", false],
    ["::ffff:cb00:710a", false],
    ["4000::1", false],
  ])("IPv6 %s is public: %s", (text, isPublic) => {
    expect(ipv6NotPublic(text) === undefined).toBe(isPublic);
  });
});

describe("hostIpv4 and hostIpv6", () => {
  it("take a public address of their family", () => {
    const config = loadConfig({
      mailDomain: "chat.example.org",
      hostProvider: "existing",
      hostAddress: "relay.example.net",
      hostIpv4: " 203.0.113.10 ",
      hostIpv6: "2001:db8::10",
    });
    expect([config.hostIpv4, config.hostIpv6]).toEqual(["203.0.113.10", "2001:db8::10"]);
  });

  it.each([
    [
      "hostIpv4",
      "10.0.0.5",
      /hostIpv4: "10\.0\.0\.5" is a private address \(10\.0\.0\.0\/8\), not a public one/,
    ],
    ["hostIpv4", "100.100.1.1", /hostIpv4: "100\.100\.1\.1" is a carrier-grade NAT address/],
    ["hostIpv4", "2001:db8::10", /hostIpv4: "2001:db8::10" is not an IPv4 address/],
    ["hostIpv4", "relay.example.net", /hostIpv4: "relay\.example\.net" is not an IPv4 address/],
    ["hostIpv6", "fd00::2", /hostIpv6: "fd00::2" is not a global unicast address \(2000::\/3; unique local/],
    ["hostIpv6", "fe80::1", /hostIpv6: "fe80::1" is not a global unicast address/],
    ["hostIpv6", "203.0.113.10", /hostIpv6: "203\.0\.113\.10" is not an IPv6 address/],
    ["hostIpv6", "2001:db8::10/64", /hostIpv6: .* is not an IPv6 address/],
  ])("refuse %s = %s, naming the option and the rule", (name, value, message) => {
    expect(errorOf({ hostAddress: "relay.example.net", [name]: value })).toMatch(message);
  });

  it("refuses hostIpv6 with disableIpv6 true", () => {
    expect(
      errorOf({ hostAddress: "relay.example.net", hostIpv6: "2001:db8::10", disableIpv6: true }),
    ).toMatch(/hostIpv6: set, but disableIpv6 is true/);
  });

  it("refuses them with hostProvider hetzner, where the cloud gives the addresses", () => {
    expect(errorOf({ hostProvider: "hetzner", hostIpv4: "203.0.113.10" })).toMatch(
      /hostIpv4\/hostIpv6: only used with hostProvider existing, but hostProvider is hetzner/,
    );
  });
});

describe("existingHostAddresses", () => {
  const of = (c: { hostAddress: string; hostIpv4?: string; hostIpv6?: string; disableIpv6?: boolean }) =>
    existingHostAddresses({ hostIpv4: "", hostIpv6: "", disableIpv6: false, ...c });

  it.each([
    [
      "a host name: both read back",
      { hostAddress: "relay.example.net" },
      { hasIpv4: true, hasIpv6: true, read: { ipv4: true, ipv6: true } },
    ],
    [
      "an IPv4 address: IPv6 read back",
      { hostAddress: "198.51.100.7" },
      { hasIpv4: true, hasIpv6: true, ipv4: "198.51.100.7", read: { ipv4: false, ipv6: true } },
    ],
    [
      "an IPv6 address and no hostIpv4: no A record, as the operator chose",
      { hostAddress: "2001:db8::5" },
      { hasIpv4: false, hasIpv6: true, ipv6: "2001:db8::5", read: { ipv4: false, ipv6: false } },
    ],
    [
      "an IPv6 address with disableIpv6: IPv4 read back (the relay needs an address record)",
      { hostAddress: "2001:db8::5", disableIpv6: true },
      { hasIpv4: true, hasIpv6: false, read: { ipv4: true, ipv6: false } },
    ],
    [
      "the options win over hostAddress",
      { hostAddress: "2001:db8::5", hostIpv4: "192.0.2.1", hostIpv6: "2001:db8::6" },
      {
        hasIpv4: true,
        hasIpv6: true,
        ipv4: "192.0.2.1",
        ipv6: "2001:db8::6",
        read: { ipv4: false, ipv6: false },
      },
    ],
    [
      "a host name with disableIpv6: only IPv4 read back",
      { hostAddress: "relay.example.net", disableIpv6: true },
      { hasIpv4: true, hasIpv6: false, read: { ipv4: true, ipv6: false } },
    ],
    [
      "an IPv4 address with disableIpv6: nothing read back",
      { hostAddress: "198.51.100.7", disableIpv6: true },
      { hasIpv4: true, hasIpv6: false, ipv4: "198.51.100.7", read: { ipv4: false, ipv6: false } },
    ],
  ])("%s", (_, config, expected) => {
    expect(of(config)).toEqual(expected);
  });
});

// Real `ip -o addr show scope global` output (addresses changed to documentation ones where they were public).
const HETZNER = [
  "2: eth0    inet 203.0.113.10/32 metric 100 scope global dynamic eth0\\       valid_lft 85950sec preferred_lft 85950sec",
  "2: eth0    inet6 2a01:4f8:c012:abcd::1/64 scope global \\       valid_lft forever preferred_lft forever",
];
const BEHIND_NAT = [
  "2: enp1s0    inet 192.168.1.20/24 brd 192.168.1.255 scope global dynamic noprefixroute enp1s0\\       valid_lft 80000sec preferred_lft 80000sec",
  "3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever preferred_lft forever",
];
/** A container on a test machine: a documentation IPv4 (public by our rules) and only a unique local IPv6. */
const ULA_ONLY = [
  "4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever",
  "4: eth0    inet6 fd00::2/64 scope global nodad \\       valid_lft forever preferred_lft forever",
];
/** SLAAC with privacy extensions, behind a carrier-grade NAT for IPv4: a temporary address comes first. */
const SLAAC = [
  "2: ens3    inet 100.72.10.5/22 brd 100.72.11.255 scope global dynamic ens3\\       valid_lft 3000sec preferred_lft 3000sec",
  "2: ens3    inet6 fd12:3456::5/64 scope global dynamic noprefixroute \\       valid_lft 86000sec preferred_lft 14000sec",
  "2: ens3    inet6 2001:db8:1:2:a1b2:c3d4:e5f6:789/64 scope global temporary dynamic \\       valid_lft 86000sec preferred_lft 14000sec",
  "2: ens3    inet6 2001:db8:1:2::dead/64 scope global deprecated dynamic \\       valid_lft 100sec preferred_lft 0sec",
  "2: ens3    inet6 2001:db8:1:2:5054:ff:fe12:3456/64 scope global dynamic mngtmpaddr noprefixroute \\       valid_lft 86000sec preferred_lft 14000sec",
];
const BOTH: Families = { ipv4: true, ipv6: true };
const read = (lines: string[] | undefined, want: Families = BOTH) =>
  runWithIp(readAddressesScript(want), lines?.join("\n"));

describe("the address read-back", () => {
  it("asks ip for the global addresses only", () => {
    expect(readAddressesScript(BOTH)).toContain("ip -o addr show scope global |");
  });

  it("prints the public address of each family asked for", () => {
    const result = read(HETZNER);
    expect(result).toMatchObject({ status: 0, stderr: "" });
    expect(result.stdout).toBe("ipv4 203.0.113.10\nipv6 2a01:4f8:c012:abcd::1\n");
    expect(parseReadAddresses(result.stdout, BOTH)).toEqual({
      ipv4: "203.0.113.10",
      ipv6: "2a01:4f8:c012:abcd::1",
    });
  });

  it("asks for nothing it was not asked for", () => {
    expect(read(HETZNER, { ipv4: false, ipv6: true }).stdout).toBe("ipv6 2a01:4f8:c012:abcd::1\n");
    expect(read(HETZNER, { ipv4: true, ipv6: false }).stdout).toBe("ipv4 203.0.113.10\n");
    // Without IPv6 asked for, a server with only a unique local IPv6 is fine.
    expect(read(ULA_ONLY, { ipv4: true, ipv6: false })).toMatchObject({
      status: 0,
      stdout: "ipv4 192.0.2.2\n",
    });
  });

  it("refuses a private IPv4 (behind NAT) and says to set hostIpv4", () => {
    const result = read(BEHIND_NAT, { ipv4: true, ipv6: false });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      "reading the server addresses for the A/AAAA records: the server has no public IPv4 address, only 192.168.1.20, 172.17.0.1 (private: the server is behind NAT; or not usable); set hostIpv4 to its public address\n",
    );
  });

  it("skips unique local IPv6 addresses and says what to set when nothing else is there", () => {
    const result = read(ULA_ONLY);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      "reading the server addresses for the A/AAAA records: the server has no public IPv6 address, only fd00::2 (not global, or not usable); set hostIpv6 to its public address, or disableIpv6 true\n",
    );
  });

  it("skips temporary, deprecated and unique local IPv6 addresses, and carrier-grade NAT IPv4", () => {
    const result = read(SLAAC);
    expect(result.stdout).toBe("");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no public IPv4 address, only 100\.72\.10\.5 .*; set hostIpv4/);
    expect(read(SLAAC, { ipv4: false, ipv6: true }).stdout).toBe("ipv6 2001:db8:1:2:5054:ff:fe12:3456\n");
  });

  it("names both missing families at once when the server has no global address at all", () => {
    const result = read([]);
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      "reading the server addresses for the A/AAAA records: the server has no public IPv4 address; set hostIpv4 to its public address",
      "reading the server addresses for the A/AAAA records: the server has no public IPv6 address; set hostIpv6 to its public address, or disableIpv6 true",
    ]);
  });

  it("says what to do when the server has no ip command", () => {
    const result = read(undefined, { ipv4: false, ipv6: true });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      "reading the server addresses for the A/AAAA records: the server has no ip command (package iproute2); install it, or set hostIpv6\n",
    );
  });

  it("agrees with the option rules on every sample address it picks", () => {
    for (const sample of [HETZNER, BEHIND_NAT, ULA_ONLY, SLAAC]) {
      for (const want of [
        { ipv4: true, ipv6: false },
        { ipv4: false, ipv6: true },
      ]) {
        const result = read(sample, want);
        if (result.status === 0) expect(() => parseReadAddresses(result.stdout, want)).not.toThrow();
      }
    }
  });

  it("refuses output the script would never print", () => {
    expect(() => parseReadAddresses("ipv4 10.0.0.5\n", BOTH)).toThrow(
      /unexpected output line "ipv4 10.0.0.5"/,
    );
    expect(() => parseReadAddresses("ipv6 2001:db8::1\n", { ipv4: false, ipv6: false })).toThrow(
      /unexpected output line/,
    );
    expect(() => parseReadAddresses("ipv4 203.0.113.10\n", BOTH)).toThrow(/names no ipv6 address/);
    expect(() => parseReadAddresses("", { ipv4: true, ipv6: false })).toThrow(/names no ipv4 address/);
  });
});
