// The relay's DNS record set as typed records. The Cloudflare component and the zone-file writer both consume
// this one list, so what an operator publishes by hand is exactly what the program would publish.
import { createHash } from "node:crypto";
import type { RelayConfig } from "../config";
import { DKIM_SELECTOR, PORTS } from "../plan/facts";

export const DEFAULT_TTL = 3600;

interface Base {
  /** Fully qualified name without the trailing dot. */
  readonly name: string;
  readonly ttl: number;
  /** Whether a relay cannot work without it (the rest is recommended). */
  readonly required: boolean;
  /** Why the record exists, for the zone file and the Cloudflare record comment. */
  readonly comment: string;
}

export type DnsRecord =
  | (Base & { readonly type: "A" | "AAAA"; readonly address: string })
  | (Base & { readonly type: "CNAME"; readonly target: string })
  | (Base & { readonly type: "MX"; readonly priority: number; readonly target: string })
  | (Base & { readonly type: "TXT"; readonly strings: readonly string[] })
  | (Base & {
      readonly type: "SRV";
      readonly priority: number;
      readonly weight: number;
      readonly port: number;
      readonly target: string;
    })
  | (Base & { readonly type: "CAA"; readonly flags: number; readonly tag: string; readonly value: string });

/** What only the server or the cloud knows; each missing fact leaves its record out. */
export interface DnsFacts {
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** Base64 SubjectPublicKeyInfo of the DKIM key: from dkimPrivateKey, or read back from the server. */
  readonly dkimPublicKey?: string;
  /** ACME account URI, which the CAA record pins; "" when the account is not known (CAA names the CA only). */
  readonly acmeAccountUrl?: string;
}

/** The MTA-STS policy served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 section 3.2). */
export function mtaStsPolicy(config: RelayConfig): string {
  return `version: STSv1\nmode: enforce\nmx: ${config.mailDomain}\nmax_age: 2419200\n`;
}

/** The policy id changes exactly when the policy does, so senders refetch it (RFC 8461 section 3.1). */
export function mtaStsId(config: RelayConfig): string {
  return createHash("sha256").update(mtaStsPolicy(config)).digest("hex").slice(0, 32);
}

/** TXT character-strings hold at most 255 bytes (RFC 1035 section 3.3), so long values are split. */
export function splitTxt(value: string, size = 255): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < value.length; i += size) chunks.push(value.slice(i, i + size));
  return chunks.length > 0 ? chunks : [""];
}

export function dkimValue(publicKey: string): string {
  return `v=DKIM1;k=rsa;p=${publicKey};s=email;t=s`;
}

/** The CA domain that CAA names, from the ACME directory URL (Let's Encrypt for the default). */
export function caaIssuer(config: RelayConfig): string {
  const host = new URL(config.acmeDirectoryUrl).hostname;
  return host.endsWith("letsencrypt.org") ? "letsencrypt.org" : host;
}

export function relayRecords(config: RelayConfig, facts: DnsFacts): DnsRecord[] {
  const d = config.mailDomain;
  const ttl = DEFAULT_TTL;
  const records: DnsRecord[] = [];
  const req = (comment: string) => ({ ttl, required: true, comment });
  const rec = (comment: string) => ({ ttl, required: false, comment });
  if (facts.ipv4)
    records.push({ name: d, type: "A", address: facts.ipv4, ...req("The relay's IPv4 address.") });
  if (facts.ipv6 && !config.disableIpv6) {
    records.push({ name: d, type: "AAAA", address: facts.ipv6, ...req("The relay's IPv6 address.") });
  }
  records.push({
    name: d,
    type: "MX",
    priority: 10,
    target: d,
    ...req("Mail for the domain goes to the relay."),
  });
  if (config.tlsMode === "acme") {
    records.push({
      name: `_mta-sts.${d}`,
      type: "TXT",
      strings: [`v=STSv1; id=${mtaStsId(config)}`],
      ...req("MTA-STS: senders must use verified TLS; the id follows the policy's content."),
    });
    records.push({ name: `mta-sts.${d}`, type: "CNAME", target: d, ...req("Serves the MTA-STS policy.") });
  }
  records.push({
    name: `www.${d}`,
    type: "CNAME",
    target: d,
    ...req("www redirects to the relay's web page."),
  });
  if (facts.dkimPublicKey) {
    records.push({
      name: `${DKIM_SELECTOR}._domainkey.${d}`,
      type: "TXT",
      strings: splitTxt(dkimValue(facts.dkimPublicKey)),
      ...req("DKIM key that signs all outgoing mail; other relays refuse unsigned mail."),
    });
  }
  records.push({
    name: d,
    type: "TXT",
    strings: ["v=spf1 a ~all"],
    ...rec("SPF: only the relay sends for it."),
  });
  records.push({
    name: `_dmarc.${d}`,
    type: "TXT",
    strings: ["v=DMARC1;p=reject;adkim=s;aspf=s"],
    ...rec("DMARC: reject mail that is not aligned with DKIM."),
  });
  if (config.tlsMode === "acme" && facts.acmeAccountUrl !== undefined) {
    records.push({
      name: d,
      type: "CAA",
      flags: 0,
      tag: "issue",
      value: facts.acmeAccountUrl
        ? `${caaIssuer(config)};accounturi=${facts.acmeAccountUrl}`
        : caaIssuer(config),
      ...rec("CAA: only the relay's own ACME account may get certificates."),
    });
  }
  records.push({
    name: `_adsp._domainkey.${d}`,
    type: "TXT",
    strings: ["dkim=discardable"],
    ...rec("ADSP: unsigned mail from the domain may be dropped."),
  });
  const srv = (service: string, port: number, what: string): DnsRecord => ({
    name: `_${service}._tcp.${d}`,
    type: "SRV",
    priority: 0,
    weight: 1,
    port,
    target: d,
    ...rec(`${what} (RFC 6186 discovery).`),
  });
  records.push(
    srv("submission", PORTS.submission, "SMTP submission with STARTTLS"),
    srv("submissions", PORTS.smtps, "SMTP submission over TLS"),
    srv("imap", PORTS.imap, "IMAP with STARTTLS"),
    srv("imaps", PORTS.imaps, "IMAP over TLS"),
  );
  return records;
}

/** The record's data in zone-file (and `dig +short`) presentation form. */
export function rdata(r: DnsRecord): string {
  switch (r.type) {
    case "A":
    case "AAAA":
      return r.address;
    case "CNAME":
      return `${r.target}.`;
    case "MX":
      return `${r.priority} ${r.target}.`;
    case "TXT":
      return r.strings.map((s) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(" ");
    case "SRV":
      return `${r.priority} ${r.weight} ${r.port} ${r.target}.`;
    case "CAA":
      return `${r.flags} ${r.tag} "${r.value}"`;
  }
}
