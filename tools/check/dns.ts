// DNS as the world sees it: every record of the relay's set asked from the zone's authoritative name servers
// (found through the NS records, so a hidden primary is never asked), the reverse names of the relay's
// addresses, and the MTA-STS policy served over HTTPS.
import { Resolver } from "node:dns/promises";
import { isIPv6 } from "node:net";
import type { RelayConfig } from "../../core/config";
import { mtaStsPolicy, rdata, type DnsRecord } from "../../core/dns";
import { DKIM_SELECTOR } from "../../core/plan/facts";
import { httpsGet } from "./net";
import { fail, ok, warn, type Row } from "./rows";

export interface NameServer {
  readonly name: string;
  readonly addr: string;
}

/** What one server answered for one name and type: the values, or the error code (ENODATA, ENOTFOUND…). */
export type Answer = { readonly values: readonly string[] } | { readonly error: string };

const TIMEOUT_MS = 3000;

export function resolverFor(servers: readonly string[]): Resolver {
  const r = new Resolver({ timeout: TIMEOUT_MS, tries: 2 });
  if (servers.length > 0) r.setServers([...servers]);
  return r;
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e);
const NO_SUCH = new Set(["ENODATA", "ENOTFOUND"]);

/**
 * The authoritative servers of the zone holding `name`: NS of the name or of its nearest parent that has NS,
 * asked through `bootstrap` (the system's resolver unless told), each with its IPv4 addresses (IPv6 when none).
 */
export async function authoritativeServers(
  name: string,
  bootstrap: Resolver,
): Promise<{ zone: string; servers: NameServer[] }> {
  const labels = name.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const zone = labels.slice(i).join(".");
    let ns: string[];
    try {
      ns = await bootstrap.resolveNs(zone);
    } catch (e) {
      if (NO_SUCH.has(code(e)) || code(e) === "EREFUSED") continue;
      throw new Error(`NS ${zone}: ${code(e)}`);
    }
    if (ns.length === 0) continue;
    const servers: NameServer[] = [];
    for (const host of ns.sort()) {
      const v4 = await bootstrap.resolve4(host).catch(() => [] as string[]);
      const addrs = v4.length > 0 ? v4 : await bootstrap.resolve6(host).catch(() => [] as string[]);
      for (const addr of addrs) servers.push({ name: host, addr });
    }
    if (servers.length === 0)
      throw new Error(`the name servers of ${zone} (${ns.join(", ")}) have no address`);
    return { zone, servers };
  }
  throw new Error(`no name server found for ${name}`);
}

/** Full form of an IPv6 address, so that 2001:db8::1 and 2001:0db8:0:0:0:0:0:1 compare equal. */
export function canonicalAddress(addr: string): string {
  if (!isIPv6(addr)) return addr;
  const [head, tail] = addr.toLowerCase().split("::");
  const groups = (s: string | undefined) => (s ? s.split(":") : []);
  const h = groups(head);
  const t = groups(tail);
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16).toString(16)).join(":");
}

const host = (s: string) => s.toLowerCase().replace(/\.$/, "");

/** A record's value in the form the comparison uses (TXT strings joined, names without the final dot). */
export function expectedValue(r: DnsRecord): string {
  switch (r.type) {
    case "A":
    case "AAAA":
      return canonicalAddress(r.address);
    case "CNAME":
      return host(r.target);
    case "MX":
      return `${r.priority} ${host(r.target)}`;
    case "TXT":
      return r.strings.join("");
    case "SRV":
      return `${r.priority} ${r.weight} ${r.port} ${host(r.target)}`;
    case "CAA":
      return `${r.flags} ${r.tag} ${r.value}`;
  }
}

/** Asks one server for one name and type, in the same value form as expectedValue. */
export async function ask(
  resolver: Resolver,
  name: string,
  type: DnsRecord["type"] | "PTR",
): Promise<Answer> {
  try {
    switch (type) {
      case "A":
        return { values: await resolver.resolve4(name) };
      case "AAAA":
        return { values: (await resolver.resolve6(name)).map(canonicalAddress) };
      case "CNAME":
        return { values: (await resolver.resolveCname(name)).map(host) };
      case "PTR":
        return { values: (await resolver.resolvePtr(name)).map(host) };
      case "MX":
        return { values: (await resolver.resolveMx(name)).map((m) => `${m.priority} ${host(m.exchange)}`) };
      case "TXT":
        return { values: (await resolver.resolveTxt(name)).map((chunks) => chunks.join("")) };
      case "SRV":
        return {
          values: (await resolver.resolveSrv(name)).map(
            (s) => `${s.priority} ${s.weight} ${s.port} ${host(s.name)}`,
          ),
        };
      case "CAA":
        return {
          values: (await resolver.resolveCaa(name)).flatMap((c) =>
            Object.entries(c)
              .filter(([k]) => k !== "critical")
              .map(([tag, value]) => `${c.critical} ${tag} ${String(value)}`),
          ),
        };
    }
  } catch (e) {
    return { error: code(e) };
  }
}

/** The first word of a TXT value (`v=spf1`, `v=DKIM1;`…): records of the same kind at one name conflict. */
const txtKind = (v: string) => v.split(/[;\s]/)[0];

/** Whether one server's answer is right for the record: exactly it (A, MX, …), or it among others (CAA). */
export function answerMatches(r: DnsRecord, answer: Answer): boolean {
  if ("error" in answer) return false;
  const want = expectedValue(r);
  switch (r.type) {
    case "CAA":
      return answer.values.includes(want);
    case "TXT": {
      // Other TXT records may share the name (site verifications); a second SPF or DKIM record may not.
      const same = answer.values.filter((v) => txtKind(v) === txtKind(want));
      return same.length === 1 && same[0] === want;
    }
    default:
      return answer.values.length === 1 && answer.values[0] === want;
  }
}

export const shown = (a: Answer) =>
  "error" in a
    ? NO_SUCH.has(a.error)
      ? "nothing"
      : a.error
    : a.values.map((v) => JSON.stringify(v)).join(", ");

/** The row's name: DKIM and CAA say what they stand for, the rest `TYPE name`. */
export function recordCheck(r: DnsRecord): string {
  if (r.type === "TXT" && r.name.startsWith(`${DKIM_SELECTOR}._domainkey.`)) return `DKIM ${r.name}`;
  return `${r.type} ${r.name}`;
}

/** The verdict on one record from every authoritative server's answer. */
export function recordRow(
  r: DnsRecord,
  answers: ReadonlyArray<{ server: NameServer; answer: Answer }>,
  advice: string,
): Row {
  const check = recordCheck(r);
  const wrong = answers.filter((a) => !answerMatches(r, a.answer));
  const want = expectedValue(r);
  if (wrong.length === 0) {
    const what = r.type === "TXT" && check.startsWith("DKIM") ? "matches the DKIM key on the server" : want;
    const note = r.type === "CAA" ? `allows the ACME account in use: ${want}` : what;
    return ok("dns", check, `${note} (${answers.length} name server${answers.length === 1 ? "" : "s"})`);
  }
  const seen = wrong.map((a) => `${a.server.name} (${a.server.addr}) has ${shown(a.answer)}`).join("; ");
  const detail = `expected ${JSON.stringify(want)}; ${seen}`;
  return r.required ? fail("dns", check, detail, advice) : warn("dns", check, detail, advice);
}

/** in-addr.arpa / ip6.arpa name of an address. */
export function reverseName(addr: string): string {
  if (!isIPv6(addr)) return `${addr.split(".").reverse().join(".")}.in-addr.arpa`;
  const nibbles = canonicalAddress(addr)
    .split(":")
    .map((g) => g.padStart(4, "0"))
    .join("");
  return `${[...nibbles].reverse().join(".")}.ip6.arpa`;
}

export interface DnsInputs {
  readonly config: RelayConfig;
  /** The record set the relay should publish (core/dns relayRecords with the server's facts). */
  readonly records: readonly DnsRecord[];
  readonly addresses: readonly string[];
  readonly bootstrap: Resolver;
  /** Where the relay's HTTPS answers (its IPv4 address), for the MTA-STS policy. */
  readonly webAddr?: string;
}

async function askAll(servers: readonly NameServer[], name: string, type: DnsRecord["type"] | "PTR") {
  return Promise.all(
    servers.map(async (server) => ({ server, answer: await ask(resolverFor([server.addr]), name, type) })),
  );
}

export async function dnsRows(input: DnsInputs): Promise<Row[]> {
  const { config } = input;
  const rows: Row[] = [];
  let servers: NameServer[];
  try {
    const found = await authoritativeServers(config.mailDomain, input.bootstrap);
    servers = found.servers;
    rows.push(
      ok("dns", `name servers of ${found.zone}`, servers.map((s) => `${s.name} ${s.addr}`).join(", ")),
    );
  } catch (e) {
    rows.push(
      fail(
        "dns",
        `name servers of ${config.mailDomain}`,
        (e as Error).message,
        "Delegate the domain to name servers that serve the relay's zone (NS records at the parent zone).",
      ),
    );
    return rows;
  }
  for (const r of input.records) {
    const advice =
      config.dnsProvider === "cloudflare"
        ? "Run `pulumi up`: the program manages this record in Cloudflare."
        : `Publish it as in the stack's zoneFile output: ${r.name}. ${r.ttl} IN ${r.type} ${rdata(r)}`;
    rows.push(recordRow(r, await askAll(servers, r.name, r.type), advice));
  }
  for (const addr of input.addresses) rows.push(await ptrRow(config, addr, input.bootstrap));
  if (config.tlsMode === "acme" && input.webAddr) rows.push(await mtaStsRow(config, input.webAddr));
  return rows;
}

/** Reverse DNS: mail to the big providers is refused from an address whose PTR is not the mail domain. */
async function ptrRow(config: RelayConfig, addr: string, bootstrap: Resolver): Promise<Row> {
  const name = reverseName(addr);
  const check = `PTR ${addr}`;
  const advice =
    config.hostProvider === "hetzner"
      ? "Run `pulumi up`: the program sets the reverse DNS of the server's addresses."
      : `Ask the provider of ${addr} to set its reverse DNS (PTR) to ${config.mailDomain}.`;
  let servers: NameServer[];
  try {
    servers = (await authoritativeServers(name, bootstrap)).servers;
  } catch (e) {
    return fail("dns", check, (e as Error).message, advice);
  }
  const answers = await askAll(servers, name, "PTR");
  const wrong = answers.filter(
    (a) => "error" in a.answer || a.answer.values.length !== 1 || a.answer.values[0] !== config.mailDomain,
  );
  if (wrong.length === 0) return ok("dns", check, config.mailDomain);
  const seen = wrong.map((a) => `${a.server.name} (${a.server.addr}) has ${shown(a.answer)}`).join("; ");
  return fail("dns", check, `expected ${JSON.stringify(config.mailDomain)}; ${seen}`, advice);
}

async function mtaStsRow(config: RelayConfig, addr: string): Promise<Row> {
  const name = `mta-sts.${config.mailDomain}`;
  const check = "MTA-STS policy";
  const advice =
    "Run `pulumi up`: nginx serves the policy from the plan (its id in DNS follows its content).";
  try {
    const res = await httpsGet({ addr, servername: name, path: "/.well-known/mta-sts.txt" });
    const want = mtaStsPolicy(config);
    if (res.status !== 200) return fail("dns", check, `https://${name}/ answered ${res.status}`, advice);
    if (res.body.replace(/\r\n/g, "\n") !== want)
      return fail(
        "dns",
        check,
        `served ${JSON.stringify(res.body)}, expected ${JSON.stringify(want)}`,
        advice,
      );
    return ok("dns", check, `served over HTTPS as expected (mx: ${config.mailDomain}, mode enforce)`);
  } catch (e) {
    return fail("dns", check, `https://${name}/.well-known/mta-sts.txt: ${(e as Error).message}`, advice);
  }
}
