// Relay: the whole chatmail relay as one component: a host, its configuration from the plan, and its DNS.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { PATHS, publicPorts, READ_BACK } from "../core/plan/facts";
import { CloudflareDns } from "./cloudflareDns";
import { dkimPublicKey, type RelayConfig } from "../core/config";
import { relayRecords, zoneFile, type DnsFacts } from "../core/dns";
import { existingHostAddresses } from "../core/host/addresses";
import { ExistingHost } from "./existingHost";
import { HetznerHost } from "./hetznerHost";
import type { Host } from "./host";
import { planRelay, type Assets, type Plan } from "../core/plan";
import { ServerConfig } from "./serverConfig";

export interface RelayArgs {
  readonly config: RelayConfig;
  readonly assets: Assets;
  /** The SSH private key, as a secret. */
  readonly sshPrivateKey: pulumi.Input<string>;
}

export class Relay extends pulumi.ComponentResource {
  readonly ipv4: pulumi.Output<string>;
  /** Whether the host has an IPv6 address; `ipv6` has a value only then. */
  readonly hasIpv6: boolean;
  readonly ipv6: pulumi.Output<string | undefined>;
  readonly webUrl: string;
  readonly zoneFile: pulumi.Output<string>;
  readonly dcaccountLink: string;
  /** One `dcaccount:` link per invite token; secret. */
  readonly inviteLinks: pulumi.Output<string[]>;
  readonly plan: Plan;

  constructor(name: string, args: RelayArgs, opts?: pulumi.ComponentResourceOptions) {
    super("chatmail:index:Relay", name, {}, opts);
    const { config } = args;
    const parent = { parent: this };
    const host = makeHost(name, args, parent);
    this.plan = planRelay(config, args.assets);
    for (const warning of this.plan.warnings) pulumi.log.warn(warning, this);
    if (pulumi.runtime.isDryRun()) pulumi.log.info(destroyNotice(config), this);
    const server = new ServerConfig(`${name}-config`, { plan: this.plan, host }, parent);

    const facts = dnsFacts(name, config, this.plan, host, server, parent);
    const shape = relayRecords(config, {
      ipv4: host.hasIpv4 ? "192.0.2.1" : undefined,
      ipv6: host.hasIpv6 ? "2001:db8::1" : undefined,
      dkimPublicKey: "shape",
      acmeAccountUrl: config.tlsMode === "acme" ? "" : undefined,
    });
    const records = facts.apply((f) => relayRecords(config, f));
    if (config.dnsProvider === "cloudflare") {
      new CloudflareDns(
        `${name}-dns`,
        {
          ...(config.cloudflareZoneId
            ? { zoneId: config.cloudflareZoneId }
            : { zoneName: config.cloudflareZoneName || parentDomain(config.mailDomain) }),
          shape,
          records,
        },
        parent,
      );
    }

    this.ipv4 = host.ipv4;
    this.hasIpv6 = host.hasIpv6;
    this.ipv6 = host.ipv6;
    this.webUrl = `https://${config.mailDomain}/`;
    this.zoneFile = records.apply((r) => zoneFile(config, r));
    this.dcaccountLink = `dcaccount:https://${config.mailDomain}/new`;
    this.inviteLinks = pulumi.secret(config.inviteTokens.map((t) => `${this.dcaccountLink}?${t}`));
    this.registerOutputs({ ipv4: this.ipv4, ipv6: this.ipv6, zoneFile: this.zoneFile });
  }
}

function makeHost(name: string, args: RelayArgs, parent: pulumi.CustomResourceOptions): Host {
  const { config } = args;
  if (config.hostProvider === "existing") {
    return new ExistingHost(
      `${name}-host`,
      {
        address: config.hostAddress,
        user: config.sshUser,
        port: config.sshPort,
        generation: config.hostGeneration,
        privateKey: args.sshPrivateKey,
        ...(config.sshHostKey ? { hostKey: config.sshHostKey } : {}),
        addresses: existingHostAddresses(config),
      },
      parent,
    );
  }
  const ports = publicPorts(config);
  return new HetznerHost(
    `${name}-host`,
    {
      mailDomain: config.mailDomain,
      serverType: config.hetznerServerType,
      location: config.hetznerLocation,
      image: config.serverOs,
      sshPublicKey: config.sshPublicKey,
      privateKey: args.sshPrivateKey,
      ...(config.sshHostKey ? { hostKey: config.sshHostKey } : {}),
      tcpPorts: ports.tcp,
      udpPorts: ports.udp,
      udpPortRanges: ports.udpRanges,
      ipv6: !config.disableIpv6,
      allowReplace: config.hetznerAllowReplace,
    },
    parent,
  );
}

/**
 * What DNS needs from the server: addresses; the DKIM public key, computed from dkimPrivateKey when the config
 * gives the key (so the record is known at preview), else read back after the key was made there (so that key
 * never enters Pulumi state); and in ACME mode the account URI.
 */
function dnsFacts(
  name: string,
  config: RelayConfig,
  plan: Plan,
  host: Host,
  server: ServerConfig,
  parent: pulumi.CustomResourceOptions,
): pulumi.Output<DnsFacts> {
  const read = (id: string, script: string, after: string[], triggers: pulumi.Input<string>[]) =>
    new command.remote.Command(
      `${name}-${id}`,
      {
        connection: host.connection,
        create: script,
        triggers,
        addPreviousOutputInEnv: false,
      },
      {
        ...parent,
        dependsOn: after.map((s) => server.commands.get(s)!),
        ...(host.server ? { deletedWith: host.server } : {}),
      },
    ).stdout.apply((s) => s.trim());
  const dkimStep = plan.steps.find((s) => s.kind === "once" && s.files.includes(PATHS.dkimPrivateKey));
  const dkim =
    config.dkimPrivateKey !== undefined
      ? pulumi.output(dkimPublicKey(config.dkimPrivateKey))
      : dkimStep
        ? read("read-dkim-public-key", READ_BACK.dkimPublicKey, [dkimStep.id], [dkimStep.hash, host.serverId])
        : pulumi.output("");
  const lastSteps = plan.steps.filter((s) => s.phase === "activate").map((s) => s.id);
  const acme =
    config.tlsMode === "acme"
      ? read("read-acme-account", READ_BACK.acmeAccountUrl, lastSteps, [host.serverId])
      : pulumi.output(undefined);
  return pulumi
    .all([host.ipv4, host.ipv6, dkim, acme])
    .apply(([ipv4, ipv6, dkimPublicKey, acmeAccountUrl]) => ({
      ...(ipv4 ? { ipv4 } : {}),
      ...(ipv6 ? { ipv6 } : {}),
      ...(dkimPublicKey ? { dkimPublicKey } : {}),
      ...(acmeAccountUrl !== undefined ? { acmeAccountUrl } : {}),
    }));
}

/**
 * What `pulumi destroy` does to this relay, said at every preview because the answer surprises: the remote
 * commands have no delete step, so the server keeps running as configured; on Hetzner the server and its
 * addresses are protected, so destroy refuses until they are unprotected (README, "What pulumi destroy leaves").
 */
export function destroyNotice(config: RelayConfig): string {
  const dns = config.dnsProvider === "cloudflare" ? " It deletes the relay's Cloudflare DNS records." : "";
  return config.hostProvider === "hetzner"
    ? `pulumi destroy leaves this relay's server running: the server and its IP addresses are protected, and destroy stops with an error until you unprotect them (README: What pulumi destroy leaves).`
    : `pulumi destroy leaves this relay's server running as configured: it runs nothing on ${config.hostAddress} and only forgets the relay in the stack's state.${dns}`;
}

/** chat.example.org is served by the zone example.org. */
export function parentDomain(domain: string): string {
  return domain.split(".").slice(1).join(".");
}
