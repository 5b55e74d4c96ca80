// The record set as a BIND zone file fragment, for operators who publish DNS by hand (dnsProvider none) and for
// the testbed's authoritative server. Each record carries a comment saying why it is there.
import type { RelayConfig } from "../config";
import { rdata, type DnsRecord } from "./records";

const NAME_WIDTH = 40;

function line(r: DnsRecord): string {
  return `${`${r.name}.`.padEnd(NAME_WIDTH)} ${String(r.ttl).padStart(5)} IN ${r.type.padEnd(5)} ${rdata(r)}`;
}

export function zoneFile(config: RelayConfig, records: readonly DnsRecord[]): string {
  const section = (title: string, list: readonly DnsRecord[]) =>
    list.length === 0
      ? []
      : [";", `; ${title}`, ";", ...list.flatMap((r) => [`; ${r.comment}`, line(r)]), ""];
  const missing: string[] = [];
  if (!records.some((r) => r.type === "A" || r.type === "AAAA"))
    missing.push("A/AAAA (server address unknown)");
  if (!records.some((r) => r.type === "TXT" && r.strings.some((s) => s.startsWith("v=DKIM1")))) {
    missing.push("DKIM (the key is made on the server at the first deploy)");
  }
  return [
    `; DNS records for the chatmail relay ${config.mailDomain}`,
    ...(missing.length > 0 ? [`; Not yet known, add after deploying: ${missing.join("; ")}`] : []),
    "",
    ...section(
      "Required DNS entries",
      records.filter((r) => r.required),
    ),
    ...section(
      "Recommended DNS entries",
      records.filter((r) => !r.required),
    ),
  ].join("\n");
}
