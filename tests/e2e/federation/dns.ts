// The test network's authoritative DNS: Debian's knot, serving one zone per relay made of the project's own zone
// file output (core/dns zoneFile) under an SOA and NS the test adds, example.net for the name server and the ACME
// server, and the reverse zones of the relays' addresses. It runs in the infrastructure namespace; reloading rewrites
// the files with a new serial.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { reverseName } from "../../../tools/check/dns";
import { run, waitFor } from "../proc";

export const NS_NAME = "ns.example.net";
/** Short TTLs: records the test replaces (DKIM, CAA) must not linger in the relays' caches. */
const SOA_TTL = 60;

export interface Zone {
  readonly origin: string;
  /** Records in zone-file syntax with absolute names (zoneFile output or the test's own lines). */
  readonly body: string;
}

export function zoneText(zone: Zone, serial: number): string {
  const o = `${zone.origin}.`;
  return [
    `$TTL ${SOA_TTL}`,
    `${o} ${SOA_TTL} IN SOA ${NS_NAME}. hostmaster.example.net. ${serial} ${SOA_TTL} ${SOA_TTL} 600 ${SOA_TTL}`,
    `${o} ${SOA_TTL} IN NS ${NS_NAME}.`,
    zone.body,
    "",
  ].join("\n");
}

export interface Knot {
  /** Writes the zones with a fresh serial and makes knot load them; resolves once knot answers the new SOA. */
  load(zones: readonly Zone[]): Promise<void>;
  close(): Promise<void>;
}

export async function startKnot(opts: {
  dir: string;
  netnsName: string;
  addr: string;
  zones: readonly Zone[];
}): Promise<Knot> {
  const dir = opts.dir;
  mkdirSync(join(dir, "zones"), { recursive: true });
  mkdirSync(join(dir, "db"), { recursive: true });
  const conf = join(dir, "knot.conf");
  let serial = Math.floor(Date.now() / 1000);
  const write = (zones: readonly Zone[]) => {
    for (const z of zones) writeFileSync(join(dir, "zones", `${z.origin}.zone`), zoneText(z, serial));
    writeFileSync(
      conf,
      [
        "server:",
        `    rundir: "${dir}"`,
        `    listen: ${opts.addr}@53`,
        "database:",
        `    storage: "${join(dir, "db")}"`,
        "log:",
        "  - target: stderr",
        "    any: info",
        "template:",
        "  - id: default",
        `    storage: "${join(dir, "zones")}"`,
        '    file: "%s.zone"',
        "    zonefile-sync: -1",
        "    zonefile-load: whole",
        "    journal-content: none",
        "    semantic-checks: on",
        "zone:",
        ...zones.map((z) => `  - domain: ${z.origin}`),
        "",
      ].join("\n"),
    );
  };
  write(opts.zones);
  await run("knotc", ["-c", conf, "conf-check"]);
  const log = createWriteStream(join(dir, "knotd.log"), { flags: "a" });
  const child: ChildProcess = spawn("ip", ["netns", "exec", opts.netnsName, "knotd", "-c", conf], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const running = () => child.exitCode === null && child.signalCode === null;
  const answersSerial = async (origin: string) => {
    if (!running()) throw new Error(`knotd exited; see ${join(dir, "knotd.log")}`);
    const r = await run(
      "ip",
      [
        "netns",
        "exec",
        opts.netnsName,
        "kdig",
        "+short",
        "+timeout=1",
        "+retry=0",
        `@${opts.addr}`,
        origin,
        "SOA",
      ],
      { allowFail: true },
    );
    return r.stdout.split(/\s+/)[2] === String(serial) ? true : undefined;
  };
  const waitLoaded = async (zones: readonly Zone[]) => {
    for (const z of zones)
      await waitFor(`knot serves ${z.origin} with serial ${serial}`, 20_000, () => answersSerial(z.origin));
  };
  const knot: Knot = {
    async load(zones) {
      serial++;
      write(zones);
      await run("knotc", ["-c", conf, "reload"]);
      await waitLoaded(zones);
    },
    async close() {
      if (!running()) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (running()) child.kill("SIGKILL");
    },
  };
  try {
    await waitLoaded(opts.zones);
  } catch (e) {
    await knot.close();
    throw e;
  }
  return knot;
}

/**
 * Reverse zones with a PTR for each relay address (the check finds their name servers through NS, as for the
 * forward zones): one zone per IPv4 /24 and per IPv6 /64.
 */
export function reverseZones(relays: ReadonlyArray<{ domain: string; addrs: readonly string[] }>): Zone[] {
  const zones = new Map<string, string[]>();
  for (const r of relays)
    for (const addr of r.addrs) {
      const name = reverseName(addr);
      // The zone cut: drop the host's octet (IPv4) or the 16 nibbles of the interface id (IPv6).
      const origin = name
        .split(".")
        .slice(addr.includes(":") ? 16 : 1)
        .join(".");
      zones.set(origin, [...(zones.get(origin) ?? []), `${name}. 60 IN PTR ${r.domain}.`]);
    }
  return [...zones].map(([origin, lines]) => ({ origin, body: lines.join("\n") }));
}
