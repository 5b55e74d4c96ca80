// What the rest of the relay needs from a host, whoever provides it (Hetzner or a server you already have).
import type * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";

export interface Host {
  /** Which address families the host has, known before the server exists (it shapes the DNS record set). */
  readonly hasIpv4: boolean;
  readonly hasIpv6: boolean;
  readonly ipv4: pulumi.Output<string>;
  /** Undefined when the host has no IPv6 address we know of. */
  readonly ipv6: pulumi.Output<string | undefined>;
  readonly connection: pulumi.Output<command.types.input.remote.ConnectionArgs>;
  /** Changes when the machine is replaced, so that its configuration runs again. */
  readonly serverId: pulumi.Output<string>;
  /** The resource whose deletion makes remote commands moot (no SSH to a server being deleted). */
  readonly server?: pulumi.Resource;
}

/** SSH settings for a server that may still be booting: retry dialing for about five minutes. */
export const DIAL = { dialErrorLimit: 30, perDialTimeout: 10 } as const;
