// Where the A and AAAA records of a server the operator already has (hostProvider existing) take their addresses
// from: the options hostIpv4/hostIpv6, else hostAddress when it is an address of that family, else the server
// itself, read back over SSH during `pulumi up` by the script below. Which records exist is decided here from
// the config alone, so the record set has the same shape at preview as after the read-back.
import type { RelayConfig } from "../config";
import { ipFamily, ipv4NotPublic, ipv6NotPublic } from "../ip";

/** Which address families the read-back asks the server for. */
export interface Families {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

export interface ExistingHostAddresses {
  /** Whether the relay gets an A record: always, unless the operator gave only an IPv6 address (hostAddress). */
  readonly hasIpv4: boolean;
  /** Whether it gets an AAAA record: unless disableIpv6. */
  readonly hasIpv6: boolean;
  /** The addresses the config gives; a family with a record but no address here is read back. */
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** The families to read from the server; both false when the config gives every address needed. */
  readonly read: Families;
}

export function existingHostAddresses(
  config: Pick<RelayConfig, "hostAddress" | "hostIpv4" | "hostIpv6" | "disableIpv6">,
): ExistingHostAddresses {
  const family = ipFamily(config.hostAddress);
  const hasIpv6 = !config.disableIpv6;
  // A mail relay needs IPv4; only an operator who names the server by an IPv6 address and gives no IPv4 (and
  // keeps IPv6 on) runs it without an A record.
  const hasIpv4 = config.hostIpv4 !== "" || family !== 6 || !hasIpv6;
  const ipv4 = hasIpv4 ? config.hostIpv4 || (family === 4 ? config.hostAddress : undefined) : undefined;
  const ipv6 = hasIpv6 ? config.hostIpv6 || (family === 6 ? config.hostAddress : undefined) : undefined;
  return {
    hasIpv4,
    hasIpv6,
    ...(ipv4 ? { ipv4 } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    read: { ipv4: hasIpv4 && !ipv4, ipv6: hasIpv6 && !ipv6 },
  };
}

/** What the read-back's messages start with, so an operator sees which step failed and why. */
export const READ_ADDRESSES_CONTEXT = "reading the server addresses for the A/AAAA records";

/**
 * The awk program that picks the addresses from `ip -o addr show scope global`: the first public IPv4 (the
 * ranges of NON_PUBLIC_IPV4 in core/ip.ts are left out) and the first global unicast IPv6 (2000::/3, which leaves
 * out unique local and link-local addresses) that is neither deprecated, temporary (privacy), tentative nor
 * failed duplicate address detection. `ip` prints IPv6 addresses in lower case with leading zeros dropped, so a
 * 2000::/3 address is exactly one whose first group has four digits and starts with 2 or 3. Prints `ipv4 ADDRESS`
 * and `ipv6 ADDRESS` lines for the families asked for (awk variables want4, want6), or a message per missing
 * family on stderr and exits 1. No single quotes: the program is quoted with them.
 */
const PICK = `
function fail(m) { print "${READ_ADDRESSES_CONTEXT}: " m > "/dev/stderr"; bad = 1 }
function public4(a,   o, x, y) {
  split(a, o, "."); x = o[1] + 0; y = o[2] + 0
  return !(x == 0 || x == 10 || (x == 100 && y >= 64 && y <= 127) || x == 127 || (x == 169 && y == 254) ||
    (x == 172 && y >= 16 && y <= 31) || (x == 192 && y == 168) || x >= 224)
}
function usable(   i) {
  for (i = 5; i <= NF; i++) if ($i ~ /^(deprecated|temporary|tentative|dadfailed)$/) return 0
  return 1
}
$3 == "inet" {
  split($4, p, "/")
  if (usable() && public4(p[1])) { if (v4 == "") v4 = p[1] } else seen4 = seen4 ", " p[1]
}
$3 == "inet6" {
  split($4, p, "/"); a = tolower(p[1])
  if (usable() && a ~ /^[23][0-9a-f][0-9a-f][0-9a-f]:/) { if (v6 == "") v6 = a } else seen6 = seen6 ", " a
}
END {
  if (want4 && v4 == "") {
    fail("the server has no public IPv4 address" (seen4 == "" ? "" : ", only " substr(seen4, 3) " (private: the server is behind NAT; or not usable)") "; set hostIpv4 to its public address")
  }
  if (want6 && v6 == "") {
    fail("the server has no public IPv6 address" (seen6 == "" ? "" : ", only " substr(seen6, 3) " (not global, or not usable)") "; set hostIpv6 to its public address, or disableIpv6 true")
  }
  if (bad) exit 1
  if (want4) print "ipv4 " v4
  if (want6) print "ipv6 " v6
}`;

/** The read-back: prints the server's public address of each family asked for, or fails naming what to set. */
export function readAddressesScript(want: Families): string {
  if (!want.ipv4 && !want.ipv6) throw new Error("readAddressesScript: no address family to read");
  const missing = `${READ_ADDRESSES_CONTEXT}: the server has no ip command (package iproute2); install it, or set ${[
    want.ipv4 ? "hostIpv4" : "",
    want.ipv6 ? "hostIpv6" : "",
  ]
    .filter(Boolean)
    .join(" and ")}`;
  return [
    `command -v ip >/dev/null 2>&1 || { echo '${missing}' >&2; exit 1; }`,
    `ip -o addr show scope global | awk -v want4=${want.ipv4 ? 1 : 0} -v want6=${want.ipv6 ? 1 : 0} '${PICK}'`,
  ].join("\n");
}

/**
 * The addresses from the read-back's output, checked by the same rules as hostIpv4 and hostIpv6: a line that
 * the script would never print (another script ran, or the rules drifted apart) is an error, not a record.
 */
export function parseReadAddresses(stdout: string, want: Families): { ipv4?: string; ipv6?: string } {
  const found: { ipv4?: string; ipv6?: string } = {};
  for (const line of stdout.split("\n").map((l) => l.trim())) {
    if (line === "") continue;
    const [family, address, ...rest] = line.split(/\s+/);
    const problem =
      family === "ipv4"
        ? ipv4NotPublic(address ?? "")
        : family === "ipv6"
          ? ipv6NotPublic(address ?? "")
          : "";
    if (problem !== undefined || rest.length > 0 || !want[family as keyof Families]) {
      throw new Error(`${READ_ADDRESSES_CONTEXT}: unexpected output line ${JSON.stringify(line)}`);
    }
    found[family as keyof Families] = address;
  }
  for (const family of ["ipv4", "ipv6"] as const) {
    if (want[family] && !found[family]) {
      throw new Error(`${READ_ADDRESSES_CONTEXT}: the output names no ${family} address`);
    }
  }
  return found;
}
