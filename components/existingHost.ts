// ExistingHost: a server the operator already has (as with cmdeploy). Nothing is created; we connect, and read
// back the public addresses the config does not give (core/host/addresses.ts decides which).
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { parseReadAddresses, readAddressesScript, type ExistingHostAddresses } from "../core/host/addresses";
import { DIAL, type Host } from "./host";

export interface ExistingHostArgs {
  readonly address: string;
  readonly user: string;
  readonly port: number;
  readonly privateKey: pulumi.Input<string>;
  /**
   * Which server at this address: steps run once per server, and a server reinstalled at the same address is a
   * new one only when the operator says so (hostGeneration).
   */
  readonly generation: number;
  /** The server's SSH host public key; verified when given. */
  readonly hostKey?: string;
  /** Which address records the relay gets, the addresses the config gives and the families to read back. */
  readonly addresses: ExistingHostAddresses;
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
    const { addresses } = args;
    this.hasIpv4 = addresses.hasIpv4;
    this.hasIpv6 = addresses.hasIpv6;
    this.connection = pulumi.secret({
      host: args.address,
      port: args.port,
      user: args.user,
      privateKey: args.privateKey,
      ...(args.hostKey ? { hostKey: args.hostKey } : {}),
      ...DIAL,
    });
    // Generation 0 keeps the id every stack had before the option existed, so that upgrading re-runs nothing.
    this.serverId = pulumi.output(
      `existing:${args.address}${args.generation > 0 ? `#${args.generation}` : ""}`,
    );

    // Runs once per server (and again when the families asked for change); the DNS records wait for its output,
    // so a server without a usable public address fails the deploy before any record is written.
    const read = addresses.read;
    const readBack =
      read.ipv4 || read.ipv6
        ? new command.remote.Command(
            `${name}-read-addresses`,
            {
              connection: this.connection,
              create: readAddressesScript(read),
              triggers: [this.serverId],
              addPreviousOutputInEnv: false,
            },
            { parent: this },
          ).stdout.apply((out) => parseReadAddresses(out, read))
        : pulumi.output({} as { ipv4?: string; ipv6?: string });
    this.ipv4 =
      addresses.ipv4 !== undefined ? pulumi.output(addresses.ipv4) : readBack.apply((r) => r.ipv4 ?? "");
    this.ipv6 = addresses.ipv6 !== undefined ? pulumi.output(addresses.ipv6) : readBack.apply((r) => r.ipv6);
    this.registerOutputs({ ipv4: this.ipv4, ipv6: this.ipv6 });
  }
}
