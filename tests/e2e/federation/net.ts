// The federation test network: one bridge on the host (10.232.0.1/24) and a namespace per machine, each joined
// to the bridge by a veth pair. Relay A, relay B and the infrastructure namespace (authoritative DNS and the ACME
// server, on two addresses) reach each other by IP; none of them has a route anywhere else. Every IPv4 address
// 10.232.0.X has an IPv6 twin 2001:db8:232::X/64 (documentation prefix; the bridge is ::1): the relays' address
// read-back finds it as the server's public IPv6, and their stacks publish it as the AAAA record.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { Netns } from "../netns";
import { run } from "../proc";

export const SUBNET = "10.232.0";
export const HOST_ADDR = `${SUBNET}.1`;
export const DNS_ADDR = `${SUBNET}.2`;
export const ACME_ADDR = `${SUBNET}.3`;
export const SUBNET6 = "2001:db8:232";
/** The IPv6 twin of an address on the test network: 10.232.0.10 is 2001:db8:232::10. */
export const ipv6Of = (ipv4: string) => `${SUBNET6}::${ipv4.split(".")[3]}`;
export const HOST_ADDR6 = ipv6Of(HOST_ADDR);
const BRIDGE = "cmfed-br";

export interface Member {
  /** Short tag: the namespace is chatmail-fed-<tag>, the host end of its veth cmfed-<tag>. */
  readonly tag: string;
  readonly addrs: readonly string[];
}

export interface FederationNet {
  /** Namespaces by tag, shaped like the single-relay testbed's so bootContainer can use them. */
  readonly members: ReadonlyMap<string, Netns>;
  remove(): Promise<void>;
}

async function subnetInUse(): Promise<boolean> {
  const { stdout } = await run("ip", ["-o", "-4", "addr", "show"]);
  return stdout.includes(`inet ${SUBNET}.`);
}

function member(tag: string, addrs: readonly string[]): Netns {
  const name = `chatmail-fed-${tag}`;
  const hostIf = `cmfed-${tag}`;
  return {
    name,
    path: `/run/netns/${name}`,
    hostIf,
    hostAddr: HOST_ADDR,
    containerAddr: addrs[0],
    hostAddr6: HOST_ADDR6,
    containerAddr6: ipv6Of(addrs[0]),
    setHosts(entries) {
      const dir = `/etc/netns/${name}`;
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        `${dir}/hosts`,
        ["127.0.0.1 localhost", ...entries.map(([ip, h]) => `${ip} ${h}`)].join("\n") + "\n",
      );
      writeFileSync(`${dir}/resolv.conf`, `nameserver ${DNS_ADDR}\n`);
    },
    async remove() {
      rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
      await run("ip", ["link", "del", hostIf], { allowFail: true });
      if (existsSync(`/run/netns/${name}`)) await run("ip", ["netns", "del", name], { allowFail: true });
    },
  };
}

export async function createFederationNet(members: readonly Member[]): Promise<FederationNet> {
  if (await subnetInUse()) {
    throw new Error(
      `federation net: ${SUBNET}.0/24 is already in use on this machine (another federation run, or its leftovers: ip link del ${BRIDGE})`,
    );
  }
  const made = new Map<string, Netns>();
  const net: FederationNet = {
    members: made,
    async remove() {
      for (const ns of made.values()) await ns.remove();
      await run("ip", ["link", "del", BRIDGE], { allowFail: true });
    },
  };
  try {
    await run("ip", ["link", "add", BRIDGE, "type", "bridge"]);
    await run("ip", ["addr", "add", `${HOST_ADDR}/24`, "dev", BRIDGE]);
    // nodad: usable at once, without duplicate address detection's delay.
    await run("ip", ["addr", "add", `${HOST_ADDR6}/64`, "dev", BRIDGE, "nodad"]);
    await run("ip", ["link", "set", BRIDGE, "up"]);
    for (const m of members) {
      const ns = member(m.tag, m.addrs);
      made.set(m.tag, ns);
      const peer = `cmfed-${m.tag}c`;
      await run("ip", ["netns", "add", ns.name]);
      await run("ip", ["-n", ns.name, "link", "set", "lo", "up"]);
      await run("ip", ["link", "add", ns.hostIf, "type", "veth", "peer", "name", peer]);
      await run("ip", ["link", "set", peer, "netns", ns.name]);
      await run("ip", ["link", "set", ns.hostIf, "master", BRIDGE]);
      await run("ip", ["link", "set", ns.hostIf, "up"]);
      for (const a of m.addrs) {
        await run("ip", ["-n", ns.name, "addr", "add", `${a}/24`, "dev", peer]);
        await run("ip", ["-n", ns.name, "addr", "add", `${ipv6Of(a)}/64`, "dev", peer, "nodad"]);
      }
      await run("ip", ["-n", ns.name, "link", "set", peer, "up"]);
    }
  } catch (e) {
    await net.remove();
    throw e;
  }
  return net;
}
