// `npm run check -- --stack NAME` (or `--ini chatmail.ini` for a relay cmdeploy deployed): is the relay healthy
// and is its DNS right. One table of ok / warn / fail rows with what to do for each non-ok row, or --json; the
// exit code is 0 only when no row failed. docs/check.md lists every row and how it is judged.
import { parseArgs } from "node:util";
import { ConfigError } from "../core/config";
import { relayRecords } from "../core/dns";
import { dnsRows, resolverFor } from "./check/dns";
import { ipv6Row, reachRows } from "./check/reach";
import { checkAccount, newAccount, roundTripRow } from "./check/roundtrip";
import { exitCode, fail, renderTable, type Row } from "./check/rows";
import { parseReport, serverRows, serverScript, sshRun, type ServerReport } from "./check/server";
import { iniTarget, PROJECT_ROOT, stackTarget, type Target } from "./check/target";

const USAGE = `Usage: npm run check -- --stack NAME [options]
       npm run check -- --ini PATH/TO/chatmail.ini [--host HOST] [options]

  --stack NAME          the relay of this stack (config and outputs via the pulumi CLI)
  --ini PATH            a relay deployed by cmdeploy, described by its chatmail.ini
  --host HOST           with --ini: the server's SSH address (default: the mail domain)
  --ssh-user USER       with --ini: default root
  --ssh-port PORT       with --ini: default 22
  --ssh-key FILE        with --ini: the private key (default: ssh's own configuration and agent)
  --cwd DIR             the Pulumi project folder (default: this checkout)
  --resolver ADDR       resolver that finds the name servers (repeatable; default: the system's)
  --known-hosts FILE    verify the server's SSH key against this file (default: ssh's own)
  --probe-host HOST     where the server tries outgoing port 25 (default: ${"gmail-smtp-in.l.google.com"})
  --no-round-trip       skip the live mail round trip
  --json                one JSON object: {"rows": [...], "exitCode": N}
`;

const DEFAULT_PROBE = "gmail-smtp-in.l.google.com";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      ini: { type: "string" },
      host: { type: "string" },
      "ssh-user": { type: "string", default: "root" },
      "ssh-port": { type: "string", default: "22" },
      "ssh-key": { type: "string" },
      cwd: { type: "string", default: PROJECT_ROOT },
      resolver: { type: "string", multiple: true, default: [] },
      "known-hosts": { type: "string" },
      "probe-host": { type: "string", default: DEFAULT_PROBE },
      "no-round-trip": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || !values.stack === !values.ini) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const port = Number(values["ssh-port"]);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new ConfigError(`--ssh-port: ${values["ssh-port"]} is not a port number (1-65535)`);
  const bootstrap = resolverFor(values.resolver);
  const target: Target = values.stack
    ? stackTarget(values.stack, values.cwd, values["known-hosts"])
    : await iniTarget(values.ini!, {
        ...(values.host ? { host: values.host } : {}),
        user: values["ssh-user"],
        port,
        ...(values["ssh-key"] ? { keyFile: values["ssh-key"] } : {}),
        ...(values["known-hosts"] ? { knownHostsFile: values["known-hosts"] } : {}),
        bootstrap,
      });
  try {
    const rows = await check(target, {
      bootstrap,
      probeHost: values["probe-host"],
      roundTrip: !values["no-round-trip"],
    });
    const code = exitCode(rows);
    process.stdout.write(
      values.json ? JSON.stringify({ rows, exitCode: code }, null, 2) + "\n" : renderTable(rows),
    );
    return code;
  } finally {
    target.cleanup();
  }
}

async function check(
  target: Target,
  opts: { bootstrap: ReturnType<typeof resolverFor>; probeHost: string; roundTrip: boolean },
): Promise<Row[]> {
  const { config } = target;
  const now = Date.now();
  let report: ServerReport | undefined;
  const server: Row[] = [];
  const ssh = await sshRun(
    target.ssh,
    serverScript({ units: target.units, mailboxesDir: config.mailboxesDir, probeHost: opts.probeHost }),
  ).catch((e: Error) => ({ code: 255, stdout: "", stderr: e.message }));
  try {
    if (ssh.code !== 0) throw new Error(ssh.stderr.trim().split("\n").pop() || `ssh exited ${ssh.code}`);
    report = parseReport(ssh.stdout);
    server.push(...serverRows(report, { config, commit: target.commit, probeHost: opts.probeHost, now }));
  } catch (e) {
    server.push(
      fail(
        "server",
        "SSH login",
        `${target.ssh.user}@${target.ssh.host}:${target.ssh.port}: ${(e as Error).message}`,
        "Check that the server runs and that the key and user of the stack may log in.",
      ),
    );
  }
  // The CA that CAA names comes from acmeDirectoryUrl; without one (a chatmail.ini) the account URI's origin
  // stands for it: caaIssuer maps both an LE directory and an LE account URL to letsencrypt.org.
  const accountUrl = report?.acmeAccountUrl ?? "";
  const dnsConfig =
    target.caFromAccount && accountUrl.startsWith("https://")
      ? { ...config, acmeDirectoryUrl: `${new URL(accountUrl).origin}/directory` }
      : config;
  const records = relayRecords(dnsConfig, {
    ...(target.ipv4 ? { ipv4: target.ipv4 } : {}),
    ...(target.ipv6 ? { ipv6: target.ipv6 } : {}),
    ...(report?.dkimPublicKey ? { dkimPublicKey: report.dkimPublicKey } : {}),
    ...(report && config.tlsMode === "acme" ? { acmeAccountUrl: report.acmeAccountUrl } : {}),
  });
  const dns = await dnsRows({
    config: dnsConfig,
    records,
    addresses: [target.ipv4, target.ipv6].filter((a): a is string => !!a),
    bootstrap: opts.bootstrap,
    ...(target.ipv4 ? { webAddr: target.ipv4 } : {}),
  });
  if (!report?.dkimPublicKey)
    dns.push(
      fail(
        "dns",
        "DKIM key on the server",
        "not read (see the server rows)",
        "The DKIM record cannot be checked without the server's key.",
      ),
    );
  const addr = target.ipv4 ?? target.ipv6;
  const reach = addr ? await reachRows(config, addr, now) : [];
  if (target.ipv4 && target.ipv6) reach.push(await ipv6Row(config, target.ipv6));
  const rows = [...dns, ...reach, ...server];
  if (opts.roundTrip && addr) {
    const secret = target.accountSecret;
    rows.push(
      await roundTripRow(config, addr, () =>
        secret !== undefined ? Promise.resolve(checkAccount(config, secret)) : newAccount(config, addr),
      ),
    );
  }
  return rows;
}

main().then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    process.stderr.write(`check: ${err instanceof ConfigError ? err.message : (err.stack ?? err.message)}\n`);
    process.exitCode = 2;
  },
);
