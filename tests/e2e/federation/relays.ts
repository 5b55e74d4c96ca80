// The two federating relays: their configuration (ACME from the test's Pebble, DNS forwarded to the test's knot)
// and the DNS zones built from the project's own record set with the facts read back from the servers.
import { loadConfig, type RelayConfig } from "../../../core/config";
import { relayRecords, zoneFile, type DnsFacts } from "../../../core/dns";
import { READ_BACK } from "../../../core/plan/facts";
import { IROH_ARCHIVE_PATH, NOTIFY_PATH, type HostSide, type RawOption } from "../config";
import type { Ssh } from "../ssh";
import type { Zone } from "./dns";
import { NS_NAME } from "./dns";
import { ACME_ADDR, DNS_ADDR, ipv6Of } from "./net";
import { ACME_NAME, PEBBLE_TERMS } from "./pebble";

export interface RelaySpec {
  readonly tag: "a" | "b";
  readonly domain: string;
  readonly addr: string;
}

export const RELAYS: readonly RelaySpec[] = [
  { tag: "a", domain: "chat-a.example.org", addr: "10.232.0.10" },
  { tag: "b", domain: "chat-b.example.org", addr: "10.232.0.11" },
];

export interface Acme {
  readonly directoryUrl: string;
  /** PEM the relays trust: Pebble's listener CA and its issuing root. */
  readonly trusted: string;
}

/** A relay's options as its stack sets them. */
export function relayOptions(spec: RelaySpec, host: HostSide, acme: Acme): Record<string, RawOption> {
  return {
    mailDomain: spec.domain,
    tlsMode: "acme",
    acmeDirectoryUrl: acme.directoryUrl,
    acmeEmail: `postmaster@${spec.domain}`,
    acmeTermsOfServiceUrl: PEBBLE_TERMS,
    trustedCaCertificates: acme.trusted,
    resolverForwarders: [DNS_ADDR],
    resolverDnssec: false,
    irohRelayDownloadUrl: host.baseUrl + IROH_ARCHIVE_PATH,
    irohRelaySha256: host.irohSha256,
    notificationUrl: host.baseUrl + NOTIFY_PATH,
    // The containers see the load of the whole shared machine (see tests/e2e/config.ts).
    maxLoad1m: 1000,
    // All test clients log in from one address (see tests/e2e/config.ts).
    accountCreationsPerMinutePerClient: 1000,
  };
}

export function relayConfig(spec: RelaySpec, host: HostSide, acme: Acme): RelayConfig {
  return loadConfig(relayOptions(spec, host, acme));
}

export async function readFacts(spec: RelaySpec, ssh: Ssh): Promise<DnsFacts> {
  const dkimPublicKey = await ssh.out(READ_BACK.dkimPublicKey);
  const acmeAccountUrl = await ssh.out(READ_BACK.acmeAccountUrl);
  // The IPv6 address is the one the stack reads back from the server (its only global one, see net.ts).
  return {
    ipv4: spec.addr,
    ipv6: ipv6Of(spec.addr),
    ...(dkimPublicKey ? { dkimPublicKey } : {}),
    acmeAccountUrl,
  };
}

export function relayZone(config: RelayConfig, facts: DnsFacts): Zone {
  return { origin: config.mailDomain, body: zoneFile(config, relayRecords(config, facts)) };
}

/** The name server's and the ACME server's own names. */
export const INFRA_ZONE: Zone = {
  origin: "example.net",
  body: [`${NS_NAME}. 60 IN A ${DNS_ADDR}`, `${ACME_NAME}. 60 IN A ${ACME_ADDR}`].join("\n"),
};
