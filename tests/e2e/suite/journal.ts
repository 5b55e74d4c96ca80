// The relay's own logs after the functional tests: no service may have logged an error or a warning (syslog
// priority, or the word in the text, since Node daemons log to stdout at "info"). Known, harmless lines are
// allowed one by one below, each with its reason. Runs before the tests that kill and reboot on purpose.
import { runningServices } from "./server";
import type { E2eTest } from "./types";

const ALLOWED: ReadonlyArray<readonly [RegExp, string]> = [
  // The suite's own negative tests: wrong and too-short passwords are refused, and that is logged.
  [
    /auth failed|authentication failed|password mismatch|AUTHENTICATIONFAILED/i,
    "the suite tries wrong passwords on purpose",
  ],
  [/Password needs to be at least/, "the suite tries a too-short password on purpose"],
  [
    /SSL_accept\(\) failed: .*unsupported protocol/,
    "the suite's TLS 1.2 client is refused on purpose (dovecot)",
  ],
  [
    /smtpd\[\d+\]: (SSL_accept error from unknown|warning: TLS library problem: .*unsupported protocol)/,
    "the same for postfix smtps",
  ],
  // The suite's message to another domain waits in the queue (the namespace has no route out) until it deletes it.
  [
    /postfix\/smtp\[\d+\]: \w+: to=<someone[0-9a-f]+@example\.org>.*status=deferred \(Host or domain name not found/,
    "mail to another domain cannot leave the test namespace",
  ],
  // Dovecot's master notes every stop, including the restarts a deploy does.
  // Which of its processes logs the note (master, or log(PID)) depends on the order they stop in.
  [/dovecot\[\d+\]: (master|log\(\d+\)): Warning: Killed with signal 15/, "a deploy restarting dovecot"],
  // Dovecot's failed-login delay is switched off on purpose (anvil-auth-penalty listener with mode 0, as on
  // upstream relays: many users share one address behind carrier NAT); auth then notes it cannot reach it
  // (Dovecot 2.4 names the connection first).
  [
    /auth: Error: (conn unix:anvil-auth-penalty: )?net_connect_unix\(anvil-auth-penalty\) failed/,
    "the auth penalty is off on purpose",
  ],
  // The port-443 tests end their TLS probes right after the handshake; the stream proxy then sees the website
  // backend's side reset.
  [
    /recv\(\) failed \(104: Connection reset by peer\).*upstream: "127\.0\.0\.1:8443"/,
    "the suite's ALPN probes hang up after the handshake",
  ],
  // The rate-limit test sends past the burst on purpose.
  [/rate limit|too much mail/i, "the suite exceeds the send rate on purpose"],
  // The suite submits cleartext to another domain and a forged sender on purpose.
  [/encryption needed|invalid unencrypted|not owned by user/i, "the suite sends refused mail on purpose"],
  // coturn notes at start that it listens and relays on every address of the server, which is what we want
  // (the plan cannot know a Hetzner server's addresses when it writes the configuration).
  [
    /turnserver\[\d+\]: .*NO EXPLICIT (LISTENER|RELAY) ADDRESS\(ES\) ARE CONFIGURED/,
    "coturn uses every address",
  ],
  // The TURN tests allocate with forged and expired credentials on purpose; coturn logs each refusal.
  [
    /turnserver\[\d+\]: .*check_stun_auth: Cannot find credentials of user <\d+>/,
    "the suite's refused TURN logins",
  ],
];

const SUSPICIOUS = /\b(error|warning|warn|fatal|panic|critical|crit)\b/i;

export const journal: E2eTest[] = [
  {
    name: "the relay's services logged no unexpected error or warning",
    async run(ctx) {
      const units = runningServices(ctx.first.plan).filter((n) => n.endsWith(".service"));
      // Debian's postfix.service is a oneshot wrapper; Postfix itself runs (and logs) in the instance unit.
      if (units.includes("postfix.service")) units.push("postfix@-.service");
      const matches = units.map((u) => `_SYSTEMD_UNIT=${u}`).join(" ");
      // Messages from the services' own processes only; systemd's notes about them are checked elsewhere.
      const text = await ctx.ssh.out(
        `{ journalctl -b --no-pager -q -o short-precise -p warning ${matches}; ` +
          `journalctl -b --no-pager -q -o short-precise ${matches} | grep -iE 'error|warn|fatal|panic|crit' || true; } | sort -u`,
      );
      const lines = text === "" ? [] : text.split("\n");
      const bad = lines.filter((l) => !ALLOWED.some(([re]) => re.test(l)));
      const priorityOnly = bad.filter((l) => !SUSPICIOUS.test(l));
      if (bad.length > 0) {
        throw new Error(
          `${bad.length} log lines (${priorityOnly.length} flagged by priority only):\n${bad.slice(0, 25).join("\n")}`,
        );
      }
    },
  },
];
