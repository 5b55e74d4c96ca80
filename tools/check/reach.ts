// Reachability from outside: each client-facing port answers with TLS and a certificate for the mail domain, and
// how long the certificate has left. Run from the operator's machine, which sees the relay as clients do.
import type { RelayConfig } from "../../core/config";
import { STUN_PORT } from "../../core/server";
import { smtpStarttls, tlsHandshake, type Handshake } from "./net";
import { fail, ok, warn, type Row } from "./rows";
import { allocate, stunBinding } from "./turn";

export const PORT_CHECKS = [
  { port: 25, what: "SMTP with STARTTLS", starttls: true },
  { port: 465, what: "submission over TLS", starttls: false },
  { port: 587, what: "submission with STARTTLS", starttls: true },
  { port: 993, what: "IMAP over TLS", starttls: false },
  { port: 443, what: "HTTPS", starttls: false },
] as const;

/** Certificates that expire within these many days: renewal has been failing for weeks. */
export const EXPIRY_FAIL_DAYS = 7;
export const EXPIRY_WARN_DAYS = 14;

const DAY_MS = 86_400_000;

export const daysLeft = (cert: { valid_to: string }, now: number) =>
  Math.floor((Date.parse(cert.valid_to) - now) / DAY_MS);

/** The verdict on one port's handshake: a chain trusted for the domain, or self-signed when so configured. */
export function portRow(
  config: RelayConfig,
  port: number,
  what: string,
  result: Handshake | Error,
  now: number,
): Row {
  const check = `port ${port} ${what}`;
  if (result instanceof Error)
    return fail(
      "reach",
      check,
      result.message,
      `Open TCP ${port} in every firewall in front of the server and check the service behind it (npm run check's server rows).`,
    );
  const names = result.cert.subjectaltname ?? "";
  const days = `${daysLeft(result.cert, now)} days left`;
  if (result.authorized)
    return ok("reach", check, `${result.protocol}, certificate for ${config.mailDomain}, ${days} (${names})`);
  if (config.tlsMode === "self-signed")
    return ok("reach", check, `${result.protocol}, self-signed certificate as configured, ${days}`);
  return fail(
    "reach",
    check,
    `${result.protocol}, certificate not trusted for ${config.mailDomain}: ${result.authorizationError ?? "?"} (${names})`,
    config.tlsMode === "acme"
      ? "Check acmetool on the server: `journalctl -u acmetool.service`; the certificate is renewed by `systemctl start acmetool.service`."
      : "Install a certificate for the mail domain at tlsCertPath/tlsKeyPath.",
  );
}

/** The certificate that expires first among the ports that answered. */
export function expiryRow(
  config: RelayConfig,
  seen: ReadonlyArray<{ port: number; handshake: Handshake }>,
  now: number,
): Row {
  const check = "certificate expiry";
  if (seen.length === 0) return fail("reach", check, "no port answered with TLS", "See the port rows above.");
  const days = seen.map((s) => ({ port: s.port, days: daysLeft(s.handshake.cert, now) }));
  const first = days.reduce((a, b) => (b.days < a.days ? b : a));
  const detail = `${first.days} days left (port ${first.port}; ${seen[0].handshake.cert.valid_to})`;
  const advice =
    config.tlsMode === "acme"
      ? "Renewal is failing: see `journalctl -u acmetool.service` on the server, fix its cause (DNS, port 80, CAA), then `systemctl start acmetool.service`."
      : "Replace the certificate before it expires.";
  if (first.days < EXPIRY_FAIL_DAYS) return fail("reach", check, detail, advice);
  if (first.days < EXPIRY_WARN_DAYS) return warn("reach", check, detail, advice);
  return ok("reach", check, detail);
}

/** Clients with IPv6 reach the relay there first (the AAAA record): one HTTPS handshake shows the path works. */
export async function ipv6Row(config: RelayConfig, addr: string): Promise<Row> {
  const check = `port 443 over IPv6 ${addr}`;
  const result = await tlsHandshake(addr, 443, config.mailDomain).catch((e: NodeJS.ErrnoException) => e);
  if (!(result instanceof Error)) return ok("reach", check, `${result.protocol}`);
  if (result.code === "ENETUNREACH" || result.code === "EADDRNOTAVAIL")
    return warn(
      "reach",
      check,
      `this machine has no IPv6 route (${result.code})`,
      "Run the check from a machine with IPv6 to test this path.",
    );
  return fail(
    "reach",
    check,
    result.message,
    "Open the ports for IPv6 in every firewall in front of the server, or set disableIpv6 true (no AAAA record).",
  );
}

/**
 * With turnServer: coturn answers a STUN binding on UDP 3478, and an Allocate without credentials with the 401
 * that starts TURN's authentication (a relayed address needs credentials, which only logged-in users get).
 */
export async function turnRow(config: RelayConfig, addr: string, port = STUN_PORT): Promise<Row> {
  const check = `port ${port} STUN and TURN (UDP)`;
  const server = { host: addr, port, transport: "udp" as const, timeoutMs: 1000 };
  try {
    const mapped = await stunBinding(server);
    const challenge = await allocate(server, { username: "npm-run-check", password: "none" });
    if (challenge.ok || challenge.code !== 401)
      throw new Error(`Allocate answered ${JSON.stringify(challenge)}, not 401`);
    return ok("reach", check, `STUN saw this machine as ${mapped}; TURN asks for credentials`);
  } catch (e) {
    return fail(
      "reach",
      check,
      (e as Error).message,
      `Open UDP and TCP ${port} and UDP ${config.turnRelayPorts} in every firewall in front of the server, and see \`journalctl -u coturn\` on it.`,
    );
  }
}

export async function reachRows(config: RelayConfig, addr: string, now = Date.now()): Promise<Row[]> {
  const rows: Row[] = [];
  const seen: Array<{ port: number; handshake: Handshake }> = [];
  for (const p of PORT_CHECKS) {
    const result = await (
      p.starttls
        ? smtpStarttls(addr, p.port, config.mailDomain)
        : tlsHandshake(addr, p.port, config.mailDomain)
    ).catch((e: Error) => e);
    if (!(result instanceof Error)) seen.push({ port: p.port, handshake: result });
    rows.push(portRow(config, p.port, p.what, result, now));
  }
  rows.push(expiryRow(config, seen, now));
  if (config.turnServer) rows.push(await turnRow(config, addr));
  return rows;
}
