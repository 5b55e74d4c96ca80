// Pre-flight checks: they run before any unit changes the server, and a failing one stops the whole deploy
// (docs/decisions.md, 'Pre-flight checks before any change'). A fresh cloud server is left to finish cloud-init
// first, the OS must be the one the config names, and every port the relay will listen on must be free or held
// by the relay itself.
import type { RelayConfig } from "../../config";
import type { PlanContext } from "../context";
import { PORTS } from "../facts";
import { check } from "../units";
import type { Unit } from "../types";

/** A port the relay listens on and the process names (as `ss` shows them) that mean "already the relay". */
export interface PortClaim {
  readonly proto: "tcp" | "udp";
  readonly port: number;
  readonly owners: readonly string[];
}

const POSTFIX = ["master", "smtpd"];
const DOVECOT = ["dovecot", "imap-login"];
// The bundled daemons run under Debian's node; cmdeploy relays being taken over run Python's filtermail.
const DAEMONS = ["node", "nodejs", "filtermail"];

/**
 * Every port the relay will hold, with its legitimate owners (cmdeploy's list in chatmail/relay 1.12.0,
 * cmdeploy/src/cmdeploy/deployers.py, adapted to our services).
 */
export function portClaims(config: RelayConfig): PortClaim[] {
  const tcp = (port: number, owners: string[]): PortClaim => ({ proto: "tcp", port, owners });
  const claims = [
    tcp(PORTS.smtp, POSTFIX),
    // systemd-resolved's stub listener is switched off by the unbound part, so it counts as ours to replace.
    tcp(PORTS.dns, ["unbound", "systemd-resolve"]),
    // cmdeploy 1.7.0 relays run acmetool's redirector on port 80; this deploy moves it to 402 behind nginx.
    tcp(PORTS.http, ["nginx", "acmetool"]),
    tcp(PORTS.imap, DOVECOT),
    tcp(PORTS.https, ["nginx"]),
    tcp(PORTS.smtps, POSTFIX),
    tcp(PORTS.submission, POSTFIX),
    tcp(PORTS.imaps, DOVECOT),
    tcp(PORTS.httpsInternal, ["nginx"]),
    tcp(PORTS.smtpsProxied, POSTFIX),
    tcp(PORTS.imapsProxied, DOVECOT),
    tcp(config.postfixReinjectPort, POSTFIX),
    tcp(config.postfixReinjectPortIncoming, POSTFIX),
    tcp(config.filtermailSmtpPort, DAEMONS),
    tcp(config.filtermailSmtpPortIncoming, DAEMONS),
    tcp(config.newAccountPort, DAEMONS),
  ];
  if (config.tlsMode === "acme") claims.push(tcp(PORTS.acmetool, ["acmetool"]));
  if (config.irohRelay === undefined) claims.push(tcp(PORTS.irohRelayHttp, ["iroh-relay"]));
  if (config.irohRelay === undefined || config.turnServer) {
    // STUN moves between iroh-relay and coturn (turnserver) when turnServer changes, and from cmdeploy's
    // chatmail-turn on an adopted relay; any of them may hold it now.
    claims.push({ proto: "udp", port: PORTS.stun, owners: ["iroh-relay", "turnserver", "chatmail-turn"] });
  }
  if (config.turnServer) claims.push(tcp(PORTS.stun, ["turnserver"]));
  if (config.mtailAddress !== undefined) {
    claims.push(tcp(PORTS.mtail, ["mtail"]), tcp(PORTS.dovecotStats, ["dovecot", "stats"]));
  }
  if (config.metricsAddress !== "") claims.push(tcp(PORTS.chatmaildMetrics, DAEMONS));
  return claims.sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}

const WAIT_FOR_CLOUD_INIT = `
if command -v cloud-init >/dev/null 2>&1; then
  # A new cloud server may still be installing packages and keys: apt runs of ours would race with it.
  cloud-init status --wait >/dev/null 2>&1 || echo "warning: cloud-init reported errors; continuing" >&2
fi
`.trim();

function osCheck(config: RelayConfig): string {
  const [id, version] = config.serverOs.split("-");
  return `
if [ ! -r /etc/os-release ]; then
  echo "this server has no /etc/os-release, so its OS is unknown; serverOs is ${config.serverOs}" >&2
  exit 1
fi
. /etc/os-release
if [ "\${ID:-}" != ${id} ] || [ "\${VERSION_ID:-}" != ${version} ]; then
  echo "this server runs \${PRETTY_NAME:-\${ID:-an unknown OS} \${VERSION_ID:-}}, but serverOs is ${config.serverOs}; install ${config.serverOs} on it or set serverOs to match" >&2
  exit 1
fi
`.trim();
}

/**
 * Lists every listener on a claimed port whose process is not one of the port's owners, one message per port and
 * process, then fails. `ss -Hlntup` prints e.g. `tcp LISTEN 0 100 0.0.0.0:25 0.0.0.0:* users:(("exim4",pid=123,fd=3))`.
 */
export function portCheck(claims: readonly PortClaim[]): string {
  const table = claims.map((c) => `${c.proto} ${c.port} ${c.owners.join(" ")}`).join("\n");
  return `
claims=$(mktemp)
trap 'rm -f "$claims"' EXIT
cat >"$claims" <<'EOF'
${table}
EOF
ss -Hlntup | awk '
  NR == FNR { key = $1 " " $2; for (i = 3; i <= NF; i++) owners[key] = owners[key] " " $i " "; next }
  {
    port = $5; sub(/.*:/, "", port)
    key = $1 " " port
    if (!(key in owners)) next
    name = "an unknown process"; pid = "?"
    if (match($0, /\\(\\("[^"]*",pid=[0-9]+/)) {
      found = substr($0, RSTART + 3, RLENGTH - 3)
      split(found, part, "\\",pid=")
      name = part[1]; pid = part[2]
    }
    if (index(owners[key], " " name " ")) next
    message = "port " port ($1 == "udp" ? "/udp" : "") " is held by " name " (pid " pid "); stop it or choose another server"
    if (!(message in seen)) { seen[message] = 1; print message > "/dev/stderr"; failed = 1 }
  }
  END { exit failed }
' "$claims" -
`.trim();
}

/**
 * With mtailAddress (or metricsAddress) set, the address must be the server's own (as cmdeploy's pre-flight in
 * chatmail/relay 1.12.0, cmdeploy/src/cmdeploy/deployers.py, checks it for mtail).
 */
function ownAddressCheck(option: string, address: string): string {
  return `
case ${address} in 127.0.0.1|::1) exit 0 ;; esac
if ! ip -o addr show | awk '{ sub(/\\/.*/, "", $4); print $4 }' | grep -qxF ${address}; then
  echo "${option} ${address} is not an address of this server (is a VPN down?); metrics would not be served" >&2
  exit 1
fi
`.trim();
}

export function preflight(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  const cloudInit = check("cloud-init", "wait until cloud-init has finished", WAIT_FOR_CLOUD_INIT);
  const afterCloudInit = (unit: Unit): Unit => ({ ...unit, after: [cloudInit.id] });
  const units: Unit[] = [
    cloudInit,
    afterCloudInit(check("os", `the server runs ${config.serverOs}`, osCheck(config))),
    afterCloudInit(
      check("ports", "the relay's ports are free or held by the relay", portCheck(portClaims(config))),
    ),
  ];
  if (config.mtailAddress !== undefined) {
    const address = check(
      "mtail-address",
      "mtailAddress belongs to this server",
      ownAddressCheck("mtailAddress", config.mtailAddress),
    );
    units.push(afterCloudInit(address));
  }
  // 127.0.0.1, the default, needs no check (the script exits at once), so there is no unit for it.
  if (config.metricsAddress !== "" && config.metricsAddress !== "127.0.0.1") {
    const address = check(
      "metrics-address",
      "metricsAddress belongs to this server",
      ownAddressCheck("metricsAddress", config.metricsAddress),
    );
    units.push(afterCloudInit(address));
  }
  return units;
}
