// HetznerHost: a Hetzner Cloud server for the relay, with addresses that outlive the server, a firewall that
// opens exactly the relay's ports, and reverse DNS for both address families (mail deliverability needs PTR).
import * as hcloud from "@pulumi/hcloud";
import * as pulumi from "@pulumi/pulumi";
import type { PortRange } from "../core/plan/facts";
import { DIAL, type Host } from "./host";

export interface HetznerHostArgs {
  readonly mailDomain: string;
  readonly serverType: string;
  readonly location: string;
  /** Hetzner image name, like debian-12. */
  readonly image: string;
  readonly sshPublicKey: string;
  readonly privateKey: pulumi.Input<string>;
  readonly hostKey?: string;
  readonly tcpPorts: readonly number[];
  readonly udpPorts: readonly number[];
  /** UDP port ranges, like the TURN server's relay ports. */
  readonly udpPortRanges: readonly PortRange[];
  readonly ipv6: boolean;
  /** Allow changes of image or user data to replace the server. */
  readonly allowReplace: boolean;
}

const ANYWHERE = ["0.0.0.0/0", "::/0"];

export class HetznerHost extends pulumi.ComponentResource implements Host {
  readonly hasIpv4: boolean;
  readonly hasIpv6: boolean;
  readonly ipv4: pulumi.Output<string>;
  readonly ipv6: pulumi.Output<string | undefined>;
  readonly connection: Host["connection"];
  readonly serverId: pulumi.Output<string>;
  readonly server: hcloud.Server;

  constructor(name: string, args: HetznerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("chatmail:host:HetznerHost", name, {}, opts);
    const parent = { parent: this };
    const label = { labels: { "chatmail-relay": args.mailDomain.replace(/\./g, "-") } };

    const sshKey = new hcloud.SshKey(`${name}-ssh-key`, { publicKey: args.sshPublicKey, ...label }, parent);

    // The addresses carry the relay's sending reputation and PTR records: they survive a server replacement
    // and `pulumi destroy` (protect), and Hetzner refuses to delete them (deleteProtection).
    const primaryIp = (family: "ipv4" | "ipv6") =>
      new hcloud.PrimaryIp(
        `${name}-${family}`,
        {
          type: family,
          location: args.location,
          assigneeType: "server",
          autoDelete: false,
          deleteProtection: true,
          ...label,
        },
        { ...parent, protect: true },
      );
    const ip4 = primaryIp("ipv4");
    const ip6 = args.ipv6 ? primaryIp("ipv6") : undefined;

    // Hetzner takes a port or a range FIRST-LAST.
    const rule = (protocol: "tcp" | "udp", port: number | PortRange) => ({
      direction: "in",
      protocol,
      port: typeof port === "number" ? String(port) : `${port.first}-${port.last}`,
      sourceIps: ANYWHERE,
    });
    const firewall = new hcloud.Firewall(
      `${name}-firewall`,
      {
        rules: [
          ...args.tcpPorts.map((p) => rule("tcp", p)),
          ...args.udpPorts.map((p) => rule("udp", p)),
          ...args.udpPortRanges.map((r) => rule("udp", r)),
          // ICMP keeps path MTU discovery and ping working.
          { direction: "in", protocol: "icmp", sourceIps: ANYWHERE },
        ],
        ...label,
      },
      parent,
    );

    this.server = new hcloud.Server(
      `${name}-server`,
      {
        serverType: args.serverType,
        location: args.location,
        image: args.image,
        sshKeys: [sshKey.id],
        publicNets: [
          {
            ipv4Enabled: true,
            ipv4: ip4.id.apply(Number),
            ipv6Enabled: args.ipv6,
            ...(ip6 ? { ipv6: ip6.id.apply(Number) } : {}),
          },
        ],
        firewallIds: [firewall.id.apply(Number)],
        // A mail server holds mailboxes and a DKIM key: Hetzner refuses to delete or rebuild it.
        deleteProtection: true,
        rebuildProtection: true,
        ...label,
      },
      {
        ...parent,
        protect: true,
        // Changing these would replace the server and lose its state; only on the operator's explicit request.
        ignoreChanges: args.allowReplace ? [] : ["image", "userData", "sshKeys"],
      },
    );

    new hcloud.Rdns(
      `${name}-rdns-ipv4`,
      { primaryIpId: ip4.id.apply(Number), ipAddress: ip4.ipAddress, dnsPtr: args.mailDomain },
      parent,
    );
    if (ip6) {
      new hcloud.Rdns(
        `${name}-rdns-ipv6`,
        { primaryIpId: ip6.id.apply(Number), ipAddress: this.server.ipv6Address, dnsPtr: args.mailDomain },
        parent,
      );
    }

    this.hasIpv4 = true;
    this.hasIpv6 = args.ipv6;
    this.ipv4 = ip4.ipAddress;
    this.ipv6 = ip6 ? this.server.ipv6Address : pulumi.output(undefined);
    this.serverId = this.server.id;
    this.connection = pulumi.secret({
      host: ip4.ipAddress,
      user: "root",
      privateKey: args.privateKey,
      ...(args.hostKey ? { hostKey: args.hostKey } : {}),
      ...DIAL,
    });
    this.registerOutputs({ ipv4: this.ipv4, ipv6: this.ipv6, serverId: this.serverId });
  }
}
