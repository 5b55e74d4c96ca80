// A network namespace of the test's own with a veth pair on a private /24 (10.231.N.0/24): the host end is .1,
// the container's end is .2. The link has IPv6 too, from the documentation prefix (2001:db8:231:N::/64, host ::1,
// container ::2): the relay's address read-back finds that as the server's public IPv6, so the stack gets an AAAA
// record as on a real server. All test traffic goes over this link; nothing is routed anywhere else.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { run } from "./proc";

export interface Netns {
  readonly name: string;
  /** /run/netns/<name>, for systemd-nspawn --network-namespace-path. */
  readonly path: string;
  readonly hostIf: string;
  readonly hostAddr: string;
  readonly containerAddr: string;
  /** The IPv6 addresses of the two ends, from 2001:db8::/32 (global unicast, so the read-back takes it). */
  readonly hostAddr6: string;
  readonly containerAddr6: string;
  /**
   * Gives programs started with `ip netns exec` their own /etc/hosts and resolv.conf (ip bind-mounts
   * /etc/netns/<name>/* over /etc for them): the names resolve to the test server, and every other lookup fails
   * at once instead of leaving the namespace. The host's own /etc is never touched.
   */
  setHosts(entries: ReadonlyArray<readonly [string, string]>): void;
  remove(): Promise<void>;
}

const SUBNET_PREFIX = "10.231";
const SUBNET6_PREFIX = "2001:db8:231";

async function freeSubnet(): Promise<number> {
  const { stdout } = await run("ip", ["-o", "-4", "addr", "show"]);
  const used = new Set([...stdout.matchAll(/inet 10\.231\.(\d+)\./g)].map((m) => Number(m[1])));
  // Start at a pid-derived offset so parallel runs on one machine rarely probe the same subnet first.
  for (let i = 0; i < 250; i++) {
    const n = 1 + ((process.pid + i) % 250);
    if (!used.has(n)) return n;
  }
  throw new Error(`netns: every ${SUBNET_PREFIX}.N.0/24 subnet is in use on this machine`);
}

export async function createNetns(): Promise<Netns> {
  const n = await freeSubnet();
  // Interface names are limited to 15 characters.
  const name = `chatmail-e2e-${n}`;
  const hostIf = `cme${n}h`;
  const peerIf = `cme${n}c`;
  const hostAddr = `${SUBNET_PREFIX}.${n}.1`;
  const containerAddr = `${SUBNET_PREFIX}.${n}.2`;
  const hostAddr6 = `${SUBNET6_PREFIX}:${n}::1`;
  const containerAddr6 = `${SUBNET6_PREFIX}:${n}::2`;
  const netns: Netns = {
    name,
    path: `/run/netns/${name}`,
    hostIf,
    hostAddr,
    containerAddr,
    hostAddr6,
    containerAddr6,
    setHosts(entries) {
      const dir = `/etc/netns/${name}`;
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        `${dir}/hosts`,
        ["127.0.0.1 localhost", ...entries.map(([ip, host]) => `${ip} ${host}`)].join("\n") + "\n",
      );
      // Nothing listens on port 53 of the namespace's loopback: other names fail fast and stay inside.
      writeFileSync(`${dir}/resolv.conf`, "nameserver 127.0.0.1\n");
    },
    async remove() {
      rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
      // Deleting one end removes the pair; the namespace goes once nothing runs in it.
      await run("ip", ["link", "del", hostIf], { allowFail: true });
      if (existsSync(`/run/netns/${name}`)) await run("ip", ["netns", "del", name], { allowFail: true });
    },
  };
  try {
    await run("ip", ["netns", "add", name]);
    await run("ip", ["-n", name, "link", "set", "lo", "up"]);
    await run("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", peerIf]);
    await run("ip", ["link", "set", peerIf, "netns", name]);
    await run("ip", ["addr", "add", `${hostAddr}/24`, "dev", hostIf]);
    // nodad: the address is usable at once, not after duplicate address detection (a second or more).
    await run("ip", ["addr", "add", `${hostAddr6}/64`, "dev", hostIf, "nodad"]);
    await run("ip", ["link", "set", hostIf, "up"]);
    await run("ip", ["-n", name, "addr", "add", `${containerAddr}/24`, "dev", peerIf]);
    await run("ip", ["-n", name, "addr", "add", `${containerAddr6}/64`, "dev", peerIf, "nodad"]);
    await run("ip", ["-n", name, "link", "set", peerIf, "up"]);
  } catch (e) {
    await netns.remove();
    throw e;
  }
  return netns;
}
