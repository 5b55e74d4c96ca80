// What the check is about: the relay's config, its addresses, how to reach it over SSH, which units it runs and
// which commit it should run. From a stack (its config and outputs, read with the pulumi CLI as the operator's
// `pulumi up` sees them) or from a chatmail.ini of a relay that cmdeploy deployed.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, parseChatmailIni, type RelayConfig } from "../../core/config";
import { PROJECT_NAME } from "../../core/config/pulumiYaml";
import { planRelay } from "../../core/plan";
import { loadAssets, PROJECT_ROOT, versionStamp } from "../../components/assets";
import { readConfigFile } from "../../components/configFile";
import type { SshTarget } from "./server";
import type { Resolver } from "node:dns/promises";

export interface Target {
  readonly config: RelayConfig;
  readonly ipv4?: string;
  readonly ipv6?: string;
  readonly ssh: SshTarget;
  /** Services that must be active on the server. */
  readonly units: readonly string[];
  /** The commit this checkout deploys; undefined for a relay deployed by cmdeploy. */
  readonly commit?: string;
  /** The secret the check account is derived from; undefined: the round trip uses /new. */
  readonly accountSecret?: string;
  /** The CA is the one the server's ACME account belongs to (chatmail.ini does not name it). */
  readonly caFromAccount?: boolean;
  /** Removes the temporary key files. */
  cleanup(): void;
}

function pulumiJson(cwd: string, args: readonly string[]): Record<string, unknown> {
  const r = spawnSync("pulumi", ["--cwd", cwd, "--non-interactive", ...args, "--json"], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new ConfigError(`pulumi ${args[0]}: ${r.error.message} (is the Pulumi CLI on PATH?)`);
  if (r.status !== 0) throw new ConfigError(`pulumi ${args.join(" ")}: ${r.stderr.trim().split("\n").pop()}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** The relay of stack `stack` of the project in `cwd`: config with secrets (for the SSH key), and outputs. */
export function stackTarget(stack: string, cwd: string, knownHostsFile?: string): Target {
  const entries = pulumiJson(cwd, ["config", "--show-secrets", "--stack", stack]) as Record<
    string,
    { value?: string }
  >;
  const raw: Record<string, string> = {};
  for (const [key, entry] of Object.entries(entries)) {
    const [project, name] = key.split(":");
    if (project === PROJECT_NAME && entry.value !== undefined) raw[name] = entry.value;
  }
  const config = loadConfig(raw);
  const outputs = pulumiJson(cwd, ["stack", "output", "--stack", stack]);
  const ipv4 = typeof outputs.ipv4 === "string" && outputs.ipv4 ? outputs.ipv4 : undefined;
  const ipv6 = typeof outputs.ipv6 === "string" && outputs.ipv6 ? outputs.ipv6 : undefined;
  const host = config.hostProvider === "existing" ? config.hostAddress : ipv4;
  if (!host) throw new ConfigError(`stack ${stack} has no ipv4 output yet: run \`pulumi up\` first`);
  const dir = mkdtempSync(join(tmpdir(), "chatmail-check-"));
  const keyFile = join(dir, "id");
  writeFileSync(keyFile, config.sshPrivateKey!.trimEnd() + "\n", { mode: 0o600 });
  let known = knownHostsFile;
  if (config.sshHostKey) {
    known = join(dir, "known_hosts");
    const name = config.sshPort === 22 ? host : `[${host}]:${config.sshPort}`;
    writeFileSync(known, `${name} ${config.sshHostKey}\n`, { mode: 0o600 });
  }
  const plan = planRelay(config, loadAssets(config));
  return {
    config,
    ...(ipv4 ? { ipv4 } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    ssh: {
      host,
      port: config.sshPort,
      user: config.sshUser,
      keyFile,
      ...(known ? { knownHostsFile: known } : {}),
    },
    units: plan.units.flatMap((u) => (u.kind === "service" && u.running ? [u.name] : [])),
    commit: versionStamp().split("\n")[0],
    accountSecret: config.sshPrivateKey,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The services every relay runs, whoever deployed it; a cmdeploy relay's own daemons show up as failed units. */
const COMMON_UNITS = [
  "postfix.service",
  "dovecot.service",
  "nginx.service",
  "opendkim.service",
  "unbound.service",
];

/** A relay that cmdeploy deployed: its chatmail.ini, its addresses from DNS, SSH as the operator's ssh does it. */
export async function iniTarget(
  path: string,
  opts: {
    host?: string;
    user: string;
    port: number;
    keyFile?: string;
    knownHostsFile?: string;
    bootstrap: Resolver;
  },
): Promise<Target> {
  const parsed = parseChatmailIni(readConfigFile(path, "a chatmail.ini"));
  // cmdeploy relays have no DNS provider and no stack: advice must not point at `pulumi up`.
  const config = loadConfig({
    ...Object.fromEntries(Object.entries(parsed.config).map(([k, v]) => [k, v as never])),
    hostProvider: "existing",
    hostAddress: opts.host ?? parsed.config.mailDomain,
    dnsProvider: "none",
  });
  const first = async (f: () => Promise<string[]>) => (await f().catch(() => [] as string[]))[0];
  const ipv4 = await first(() => opts.bootstrap.resolve4(config.mailDomain));
  const ipv6 = config.disableIpv6 ? undefined : await first(() => opts.bootstrap.resolve6(config.mailDomain));
  return {
    config,
    ...(ipv4 ? { ipv4 } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    ssh: {
      host: config.hostAddress,
      port: opts.port,
      user: opts.user,
      ...(opts.keyFile ? { keyFile: opts.keyFile } : {}),
      ...(opts.knownHostsFile ? { knownHostsFile: opts.knownHostsFile } : {}),
    },
    units: COMMON_UNITS,
    caFromAccount: true,
    cleanup: () => {},
  };
}

export { PROJECT_ROOT };
