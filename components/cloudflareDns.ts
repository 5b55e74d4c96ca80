// CloudflareDns: every record of the relay's record set as a Cloudflare DNS record, never proxied (Cloudflare
// proxies only HTTP; mail and IMAP must reach the server itself).
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import { rdata, type DnsRecord } from "../core/dns";

export interface CloudflareDnsArgs {
  /** The zone by id, or looked up by name. */
  readonly zoneId?: string;
  readonly zoneName?: string;
  /** The shape of the record set (names and types), known at preview. */
  readonly shape: readonly DnsRecord[];
  /** The record set with real values, which may depend on the server. */
  readonly records: pulumi.Output<readonly DnsRecord[]>;
}

export const recordKey = (r: DnsRecord) => `${r.type}:${r.name}`;

export class CloudflareDns extends pulumi.ComponentResource {
  constructor(name: string, args: CloudflareDnsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("chatmail:dns:CloudflareDns", name, {}, opts);
    if (!args.zoneId && !args.zoneName) throw new Error("CloudflareDns: give zoneId or zoneName");
    const zoneId = args.zoneId
      ? pulumi.output(args.zoneId)
      : cloudflare
          .getZoneOutput({ filter: { name: args.zoneName! } }, { parent: this })
          .apply((z) => z.zoneId!);
    for (const shape of args.shape) {
      const key = recordKey(shape);
      const record = args.records.apply((all) => {
        const found = all.find((r) => recordKey(r) === key);
        if (!found) throw new Error(`CloudflareDns: record ${key} disappeared from the record set`);
        return found;
      });
      new cloudflare.DnsRecord(
        `${name}-${key}`,
        {
          zoneId,
          name: shape.name,
          type: shape.type,
          ttl: shape.ttl,
          proxied: false,
          comment: shape.comment,
          ...recordContent(shape, record),
        },
        { parent: this },
      );
    }
    this.registerOutputs({});
  }
}

/** Cloudflare wants MX/SRV/CAA values split into fields and TXT values as quoted strings. */
function recordContent(
  shape: DnsRecord,
  record: pulumi.Output<DnsRecord>,
): Partial<cloudflare.DnsRecordArgs> {
  switch (shape.type) {
    case "MX":
      return {
        content: record.apply((r) => (r.type === "MX" ? r.target : "")),
        priority: shape.priority,
      };
    case "SRV":
      return {
        priority: shape.priority,
        data: record.apply((r) =>
          r.type === "SRV" ? { priority: r.priority, weight: r.weight, port: r.port, target: r.target } : {},
        ),
      };
    case "CAA":
      return {
        data: record.apply((r) => (r.type === "CAA" ? { flags: r.flags, tag: r.tag, value: r.value } : {})),
      };
    case "CNAME":
      return { content: record.apply((r) => (r.type === "CNAME" ? r.target : "")) };
    default:
      return { content: record.apply(rdata) };
  }
}
