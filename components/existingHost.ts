// ExistingHost: a server the operator already has (as with cmdeploy). Nothing is created; we only connect.
import * as pulumi from "@pulumi/pulumi";
import { DIAL, type Host } from "./host";

export interface ExistingHostArgs {
  readonly address: string;
  readonly user: string;
  readonly port: number;
  readonly privateKey: pulumi.Input<string>;
  /** The server's SSH host public key; verified when given. */
  readonly hostKey?: string;
}

export class ExistingHost extends pulumi.ComponentResource implements Host {
  readonly hasIpv4: boolean;
  readonly hasIpv6: boolean;
  readonly ipv4: pulumi.Output<string>;
  readonly ipv6: pulumi.Output<string | undefined>;
  readonly connection: Host["connection"];
  readonly serverId: pulumi.Output<string>;

  constructor(name: string, args: ExistingHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("chatmail:host:ExistingHost", name, {}, opts);
    if (args.address.trim() === "") throw new Error("ExistingHost: address is empty");
    const isIpv4 = /^\d+\.\d+\.\d+\.\d+$/.test(args.address);
    this.hasIpv4 = isIpv4;
    this.hasIpv6 = args.address.includes(":");
    this.ipv4 = pulumi.output(isIpv4 ? args.address : "");
    this.ipv6 = pulumi.output(args.address.includes(":") ? args.address : undefined);
    this.connection = pulumi.secret({
      host: args.address,
      port: args.port,
      user: args.user,
      privateKey: args.privateKey,
      ...(args.hostKey ? { hostKey: args.hostKey } : {}),
      ...DIAL,
    });
    this.serverId = pulumi.output(`existing:${args.address}`);
    this.registerOutputs({ ipv4: this.ipv4, ipv6: this.ipv6 });
  }
}
