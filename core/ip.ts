// IP address literals, read strictly, and which of them the Internet can reach. Used by the options that hold a
// server's public addresses (hostIpv4, hostIpv6) and by the read-back of an existing host's addresses, which
// applies the same rules on the server (core/host/addresses.ts).

/** The four octets of a dotted-quad IPv4 address; no leading zeros (010 could mean octal), nothing else. */
export function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p))) return undefined;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** The eight 16-bit groups of an IPv6 address in hex groups, with at most one `::`; no zone, no prefix length. */
export function parseIpv6(text: string): number[] | undefined {
  if (text.length > 39 || !/^[0-9a-f:]+$/i.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  const count = head.length + tail.length;
  if (halves.length === 2 ? count > 7 : count !== 8) return undefined;
  return [...head, ...Array<string>(8 - count).fill("0"), ...tail].map((g) => parseInt(g, 16));
}

/** 4 or 6 for an address literal of that family, undefined for anything else (a host name). */
export function ipFamily(text: string): 4 | 6 | undefined {
  if (parseIpv4(text)) return 4;
  if (parseIpv6(text)) return 6;
  return undefined;
}

/**
 * IPv4 ranges that are not reachable from the Internet: a server with only these is behind NAT (or not on the
 * Internet at all). The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) count as public,
 * so that examples and tests can use them. The read-back script on the server tests the same ranges.
 */
export const NON_PUBLIC_IPV4: readonly { readonly prefix: string; readonly what: string }[] = [
  { prefix: "0.0.0.0/8", what: "'this network'" },
  { prefix: "10.0.0.0/8", what: "private" },
  { prefix: "100.64.0.0/10", what: "carrier-grade NAT" },
  { prefix: "127.0.0.0/8", what: "loopback" },
  { prefix: "169.254.0.0/16", what: "link-local" },
  { prefix: "172.16.0.0/12", what: "private" },
  { prefix: "192.168.0.0/16", what: "private" },
  { prefix: "224.0.0.0/3", what: "multicast or reserved" },
];

function inPrefix(octets: readonly number[], prefix: string): boolean {
  const [net, bits] = prefix.split("/");
  const value = (o: readonly number[]) => ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  return (value(octets) & mask) >>> 0 === (value(parseIpv4(net)!) & mask) >>> 0;
}

/** Why an IPv4 address is not a public one, or undefined when it is. */
export function ipv4NotPublic(text: string): string | undefined {
  const octets = parseIpv4(text);
  if (!octets)
    return "is not an IPv4 address (four numbers from 0 to 255 without leading zeros, like 203.0.113.10)";
  const range = NON_PUBLIC_IPV4.find((r) => inPrefix(octets, r.prefix));
  return range
    ? `is a ${range.what} address (${range.prefix}), not a public one; use the address the Internet reaches the server at`
    : undefined;
}

/**
 * Why an IPv6 address is not a public one, or undefined when it is. Public means global unicast, 2000::/3: that
 * leaves out unique local (fc00::/7), link-local (fe80::/10), multicast, loopback and IPv4-mapped addresses. The
 * documentation prefix 2001:db8::/32 lies inside and counts as public, like the IPv4 documentation ranges.
 */
export function ipv6NotPublic(text: string): string | undefined {
  const groups = parseIpv6(text);
  if (!groups) return "is not an IPv6 address (hex groups separated by :, at most one ::, like 2001:db8::10)";
  return groups[0] >= 0x2000 && groups[0] <= 0x3fff
    ? undefined
    : "is not a global unicast address (2000::/3; unique local fc00::/7, link-local fe80::/10 and the like are not reachable from the Internet)";
}
