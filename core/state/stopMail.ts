// The stop-mail script, run on the old server at the end of a move: it stops accepting mail, lets Postfix deliver
// what it holds for the relay's own addresses, and then stops the mail services, so that the accounts and
// mailboxes copied next are final. `postconf -e master_service_disable=inet` and `postfix reload` close every
// SMTP listener (25, 465, 587 and the loopback ones), while the queue manager goes on delivering: local mail to
// Dovecot over LMTP, other mail to other relays. The script waits (at most `timeout` seconds) until `postqueue -j`
// shows no message with a recipient of the relay's domain, then stops Postfix, Dovecot and chatmaild.
// It prints one summary line on stdout; messages still queued for other domains are named by queue id and
// recipient domain only. Exit 1 when mail for the relay is still queued at the timeout: then the services keep
// running (SMTP stays closed) so that the operator can wait longer or look at the queue.
import type { RelayConfig } from "../config";
import { q } from "../plan/sh";

/** Seconds between two looks at the queue. */
export const QUEUE_POLL_SECONDS = 2;

/**
 * Reads `postqueue -j` (one JSON object per line) on stdin and prints one line per message: `local <id>` when a
 * recipient is at the relay's domain (argv[1]; a recipient without a domain counts as local, and so does a line
 * that is no JSON: the script waits for what it cannot judge), else `other <id> <domain>,<domain>`. Runs with the
 * server's node (chatmaild's runtime).
 */
export const QUEUE_CLASSIFIER = `
const domain = (process.argv[1] || "").toLowerCase();
const clean = (s, re) => String(s).replace(re, "");
let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (text += c));
process.stdin.on("end", () => {
  for (const line of text.split("\\n")) {
    if (line.trim() === "") continue;
    let m;
    try { m = JSON.parse(line); } catch { console.log("local ?"); continue; }
    const id = clean(m.queue_id ?? "?", /[^0-9A-Za-z]/g) || "?";
    const domains = [...new Set((Array.isArray(m.recipients) ? m.recipients : []).map((r) => {
      const a = String((r && r.address) || "");
      return a.includes("@") ? clean(a.slice(a.lastIndexOf("@") + 1).toLowerCase(), /[^a-z0-9.-]/g) : "";
    }))];
    if (domains.length === 0 || domains.includes(domain) || domains.includes("")) console.log("local " + id);
    else console.log("other " + id + " " + domains.join(","));
  }
});
`.trim();

/** Services stopped once the queue holds no local mail, in this order. */
export const STOPPED_SERVICES = ["postfix.service", "dovecot.service", "chatmaild.service"] as const;

/** At most this many messages are named in the summary line. */
const NAMED = 20;

export function stopMailScript(opts: { config: RelayConfig; timeoutSeconds: number }): string {
  if (!Number.isSafeInteger(opts.timeoutSeconds) || opts.timeoutSeconds < 0)
    throw new Error(`state: timeout ${opts.timeoutSeconds} is not a whole number of seconds`);
  const domain = opts.config.mailDomain.toLowerCase();
  return `
domain=${q(domain)}
timeout=${opts.timeoutSeconds}
classify=${q(QUEUE_CLASSIFIER)}
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
# Up to ${NAMED} lines of "<id> (<domains>)" joined with commas, and how many more there are.
named() {
  awk -v kind="$1" -v n=${NAMED} '$1 == kind { c++; if (c <= n) printf "%s%s%s", (c > 1 ? ", " : ""), $2, ($3 != "" ? " (" $3 ")" : "") } END { if (c > n) printf " and %d more", c - n }' "$work/sorted"
}
if ! postconf -e master_service_disable=inet; then
  echo "stop-mail: could not close Postfix's listeners (postconf -e master_service_disable=inet)" >&2
  exit 1
fi
if postfix status >/dev/null 2>&1; then
  if ! postfix reload >/dev/null 2>&1; then
    echo "stop-mail: could not close Postfix's listeners (postfix reload)" >&2
    exit 1
  fi
else
  # Run again after an earlier run stopped the services (a copy that failed afterwards): Postfix starts with its
  # listeners closed, Dovecot and chatmaild with it, so that what it still holds is delivered before they stop.
  for s in ${[...STOPPED_SERVICES].reverse().join(" ")}; do
    systemctl start "$s" || { echo "stop-mail: could not start $s to deliver the queue" >&2; exit 1; }
  done
fi
# Deferred mail is tried now rather than at the next queue run.
postqueue -f >/dev/null 2>&1 || true
start=$(date +%s)
while :; do
  if ! postqueue -j >"$work/queue" 2>"$work/error"; then
    echo "stop-mail: postqueue -j failed: $(head -n 1 "$work/error")" >&2
    exit 1
  fi
  if ! node -e "$classify" "$domain" <"$work/queue" >"$work/sorted"; then
    echo "stop-mail: could not read the queue (node)" >&2
    exit 1
  fi
  waited=$(($(date +%s) - start))
  locals=$(grep -c '^local ' "$work/sorted")
  others=$(grep -c '^other ' "$work/sorted")
  if [ "$others" -eq 0 ]; then
    left="no message for other domains is queued"
  else
    left="$others messages for other domains stay in this server's queue: $(named other)"
  fi
  [ "$locals" -gt 0 ] || break
  if [ "$waited" -ge "$timeout" ]; then
    echo "stop-mail: after $waited s, $locals messages for $domain are still queued ($(named local)); SMTP stays closed, the services keep running; $left"
    exit 1
  fi
  sleep ${QUEUE_POLL_SECONDS}
done
stopped=
for s in ${STOPPED_SERVICES.join(" ")}; do
  if systemctl stop "$s"; then stopped="$stopped\${stopped:+,} $s"; else echo "stop-mail: could not stop $s" >&2; exit 1; fi
done
echo "stop-mail: SMTP closed, no mail for $domain queued (waited $waited s), stopped$stopped; $left"
`.trim();
}
