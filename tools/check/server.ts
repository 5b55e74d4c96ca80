// On the server, over SSH: one script prints every fact the server rows need, in sections, and the rows are
// judged here from what it printed (serverRows is pure, so each verdict is tested without a server).
import { spawn } from "node:child_process";
import { parseSizeMb, type RelayConfig } from "../../core/config";
import { NOCREATE_FILE } from "../../core/server";
import { PATHS, READ_BACK } from "../../core/plan/facts";
import { q } from "../../core/plan/sh";
import { RUN_LOG } from "../../core/plan/steps";
import { fail, ok, warn, type Row } from "./rows";

export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Private key file; unset: ssh's own configuration (agent, ~/.ssh). */
  readonly keyFile?: string;
  /** known_hosts file to verify the server against; unset: ssh's default, new hosts accepted on first use. */
  readonly knownHostsFile?: string;
}

/** The ssh options for the target: its port, key and host key checking; never a prompt. */
export function sshOptions(target: SshTarget): string[] {
  return [
    "-p",
    String(target.port),
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    `StrictHostKeyChecking=${target.knownHostsFile ? "yes" : "accept-new"}`,
    ...(target.knownHostsFile ? ["-o", `UserKnownHostsFile=${target.knownHostsFile}`] : []),
    ...(target.keyFile ? ["-i", target.keyFile, "-o", "IdentitiesOnly=yes"] : []),
  ];
}

/** Runs `script` with sh on the server (through sudo when the user is not root); never prints its output. */
export function sshRun(
  target: SshTarget,
  script: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = [
    ...sshOptions(target),
    `${target.user}@${target.host}`,
    target.user === "root" ? "sh -s" : "sudo -n sh -s",
  ];
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(script);
  });
}

/** What serverScript prints, parsed. */
export interface ServerReport {
  /** systemd's ActiveState, Type (services) and Result of each unit. */
  readonly units: ReadonlyArray<{
    readonly name: string;
    readonly state: string;
    readonly type: string;
    readonly result: string;
  }>;
  readonly failedUnits: readonly string[];
  /** Queued messages: arrival (unix seconds) and why the first recipient waits. */
  readonly queue: ReadonlyArray<{ readonly arrival: number; readonly reason: string }>;
  readonly diskFreeKb: number;
  readonly memAvailableKb: number;
  readonly version: string;
  /** Time of the last deploy step that ran (ISO), or "" when unknown. */
  readonly lastDeploy: string;
  readonly accounts: number;
  readonly nocreate: boolean;
  readonly dkimPublicKey: string;
  readonly acmeAccountUrl: string;
  /** First bytes of the answer from the probe host's port 25, or the error. */
  readonly outgoing25: string;
}

const SECTIONS = [
  "units",
  "failed",
  "queue",
  "disk",
  "memory",
  "version",
  "lastdeploy",
  "accounts",
  "nocreate",
  "dkim",
  "acme",
  "outgoing25",
] as const;

/** The script: each section starts with a `== name` line; nothing in it changes the server. */
export function serverScript(opts: {
  units: readonly string[];
  mailboxesDir: string;
  probeHost: string;
}): string {
  const dir = q(opts.mailboxesDir);
  const body: Record<(typeof SECTIONS)[number], string> = {
    units: `for u in ${opts.units.map(q).join(" ")}; do echo "$u $(systemctl show -P ActiveState "$u") $(systemctl show -P Type "$u") $(systemctl show -P Result "$u")"; done`,
    failed: "systemctl list-units --failed --plain --no-legend --no-pager 2>/dev/null | awk '{print $1}'",
    queue: "postqueue -j 2>/dev/null || true",
    disk: `df -Pk ${dir} 2>/dev/null | awk 'NR==2 {print $4}'`,
    memory: "awk '/^MemAvailable:/ {print $2}' /proc/meminfo",
    version: `cat ${PATHS.version} 2>/dev/null || true`,
    lastdeploy: `if [ -s ${RUN_LOG} ]; then tail -n 1 ${RUN_LOG} | cut -d' ' -f1; elif [ -e ${PATHS.version} ]; then date -u -r ${PATHS.version} +%Y-%m-%dT%H:%M:%SZ; fi`,
    accounts: `find ${dir} -mindepth 2 -maxdepth 2 -name password 2>/dev/null | wc -l`,
    nocreate: `if [ -e ${NOCREATE_FILE} ]; then echo yes; else echo no; fi`,
    dkim: `${READ_BACK.dkimPublicKey} 2>/dev/null || true`,
    acme: READ_BACK.acmeAccountUrl,
    // bash's /dev/tcp: no client package needed; `timeout` bounds a blocked port's silent drop.
    outgoing25: `timeout 12 bash -c 'exec 3<>/dev/tcp/${opts.probeHost.replace(/[^A-Za-z0-9.:-]/g, "")}/25 && head -c 3 <&3' 2>&1 || echo " (exit $?)"`,
  };
  // The empty echo ends a section whose command prints no final newline (the DKIM key read-back).
  return SECTIONS.map((s) => `echo '== ${s}'\n${body[s]}\necho`).join("\n") + "\n";
}

export function parseReport(stdout: string): ServerReport {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of stdout.split("\n")) {
    const m = /^== (\w+)$/.exec(line);
    if (m) sections.set(m[1], (current = []));
    else if (current && line.trim() !== "") current.push(line.trim());
  }
  const missing = SECTIONS.filter((s) => !sections.has(s));
  if (missing.length > 0) throw new Error(`the server's answer lacks ${missing.join(", ")}`);
  const lines = (s: string) => sections.get(s)!;
  const text = (s: string) => lines(s).join("\n");
  const num = (s: string) => Number(lines(s)[0] ?? NaN);
  return {
    units: lines("units").map((l) => {
      const [name, state = "unknown", type = "", result = ""] = l.split(" ");
      return { name, state, type, result };
    }),
    failedUnits: lines("failed"),
    queue: lines("queue").flatMap((l) => {
      try {
        const m = JSON.parse(l) as { arrival_time: number; recipients?: Array<{ delay_reason?: string }> };
        return [{ arrival: m.arrival_time, reason: m.recipients?.[0]?.delay_reason ?? "" }];
      } catch {
        return [];
      }
    }),
    diskFreeKb: num("disk"),
    memAvailableKb: num("memory"),
    version: text("version"),
    lastDeploy: text("lastdeploy"),
    accounts: num("accounts"),
    nocreate: text("nocreate") === "yes",
    dkimPublicKey: text("dkim"),
    acmeAccountUrl: text("acme"),
    outgoing25: text("outgoing25"),
  };
}

export interface ServerExpectations {
  readonly config: RelayConfig;
  /** The commit this checkout would deploy; undefined when not known (a relay deployed by cmdeploy). */
  readonly commit?: string;
  readonly probeHost: string;
  readonly now: number;
}

const QUEUE_WARN_AGE_S = 3600;
const QUEUE_FAIL_COUNT = 1000;
const mb = (kb: number) => `${Math.round(kb / 1024)} MiB`;
const ago = (iso: string, now: number) => {
  const h = (now - Date.parse(iso)) / 3_600_000;
  return h < 48 ? `${h.toFixed(1)} hours ago` : `${Math.floor(h / 24)} days ago`;
};

export function serverRows(r: ServerReport, e: ServerExpectations): Row[] {
  const { config } = e;
  const rows: Row[] = [];
  for (const u of r.units) {
    const check = `unit ${u.name}`;
    // A one-shot service (acmetool's reconcile) is inactive between runs; its last run must have succeeded.
    const idleOneShot = u.type === "oneshot" && u.state === "inactive" && u.result === "success";
    rows.push(
      u.state === "active"
        ? ok("server", check, "active")
        : idleOneShot
          ? ok("server", check, "one-shot, its last run succeeded")
          : fail(
              "server",
              check,
              [u.state, u.result].filter(Boolean).join(", "),
              `See \`journalctl -u ${u.name}\` on the server; \`systemctl start ${u.name}\` starts it (\`pulumi up\` restores its files).`,
            ),
    );
  }
  rows.push(
    r.failedUnits.length === 0
      ? ok("server", "failed units", "none")
      : fail(
          "server",
          "failed units",
          r.failedUnits.join(", "),
          "See `systemctl --failed` and `journalctl -u <unit>` on the server; `systemctl reset-failed` once fixed.",
        ),
  );
  rows.push(queueRow(r, e.now));
  const minDisk = parseSizeMb(config.minFreeDiskSpace) * 1024;
  const minMem = parseSizeMb(config.minAvailableMemory) * 1024;
  rows.push(
    thresholdRow(
      "disk free",
      r.diskFreeKb,
      minDisk,
      `minFreeDiskSpace ${config.minFreeDiskSpace}`,
      `Free space under ${config.mailboxesDir} (lower deleteMailsAfter, or a bigger disk).`,
    ),
  );
  rows.push(
    thresholdRow(
      "memory available",
      r.memAvailableKb,
      minMem,
      `minAvailableMemory ${config.minAvailableMemory}`,
      "Find what uses the memory (`systemd-cgtop`), or move to a bigger server.",
    ),
  );
  const deployed = r.version.split("\n")[0] ?? "";
  if (r.version === "")
    rows.push(fail("server", "deployed version", "no /etc/chatmail-version", "Run `pulumi up`."));
  else if (e.commit === undefined)
    rows.push(ok("server", "deployed version", `commit ${deployed} (cmdeploy)`));
  else if (deployed === e.commit)
    rows.push(ok("server", "deployed version", `${r.version.split("\n").join(", ")}, as this checkout`));
  else
    rows.push(
      warn(
        "server",
        "deployed version",
        `the server runs commit ${deployed}; this checkout is at ${e.commit}`,
        "Run `pulumi up` from this checkout (or check out the deployed commit).",
      ),
    );
  rows.push(
    r.lastDeploy
      ? ok("server", "last deploy", `${r.lastDeploy} (${ago(r.lastDeploy, e.now)})`)
      : warn("server", "last deploy", "no deploy recorded", "Run `pulumi up`."),
  );
  rows.push(ok("server", "accounts", `${r.accounts} under ${config.mailboxesDir}`));
  rows.push(
    ok(
      "server",
      "account creation",
      r.nocreate
        ? `stopped (${NOCREATE_FILE} exists)`
        : config.inviteTokens.length > 0
          ? `invite-only (${config.inviteTokens.length} token${config.inviteTokens.length === 1 ? "" : "s"})`
          : "open",
    ),
  );
  rows.push(
    r.outgoing25.startsWith("220")
      ? ok("server", "outgoing port 25", `${e.probeHost} answered 220`)
      : fail(
          "server",
          "outgoing port 25",
          `no SMTP greeting from ${e.probeHost}:25: ${r.outgoing25 || "nothing"}`,
          "The server cannot send mail to other servers. Hetzner blocks outgoing port 25 on new accounts: ask Hetzner support to unblock it (possible once the first invoice is paid). Elsewhere, ask the provider or open it in your firewall.",
        ),
  );
  return rows;
}

function thresholdRow(check: string, haveKb: number, minKb: number, rule: string, advice: string): Row {
  if (!Number.isFinite(haveKb)) return fail("server", check, "not readable", advice);
  const detail = `${mb(haveKb)} (new accounts are refused below ${rule})`;
  if (haveKb < minKb) return fail("server", check, detail, advice);
  if (haveKb < 2 * minKb) return warn("server", check, detail, advice);
  return ok("server", check, detail);
}

function queueRow(r: ServerReport, now: number): Row {
  const n = r.queue.length;
  if (n === 0) return ok("server", "mail queue", "empty");
  const oldest = r.queue.reduce((a, b) => (b.arrival < a.arrival ? b : a));
  const age = Math.round(now / 1000 - oldest.arrival);
  const detail = `${n} message${n === 1 ? "" : "s"}, oldest ${Math.round(age / 60)} min: ${oldest.reason}`;
  const advice = "See `postqueue -p` on the server; the reasons say which peers refuse or cannot be reached.";
  if (n >= QUEUE_FAIL_COUNT) return fail("server", "mail queue", detail, advice);
  if (age >= QUEUE_WARN_AGE_S) return warn("server", "mail queue", detail, advice);
  return ok("server", "mail queue", detail);
}
