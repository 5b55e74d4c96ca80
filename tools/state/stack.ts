// The relay the tools act on: the stack's config and plan, and how to reach its server over SSH, as the check
// tool finds them (tools/check/target.ts: the pulumi CLI, the stack's sshPrivateKey written to a 0600 temporary
// file that cleanup() removes). The other server of a move is reached with the same user, port and key unless
// told otherwise.
import type { RelayConfig } from "../../core/config";
import { planRelay } from "../../core/plan";
import type { Plan } from "../../core/plan/types";
import { manifestText, type Part } from "../../core/state";
import { loadAssets, versionStamp } from "../../components/assets";
import { stackTarget } from "../check/target";
import type { SshTarget } from "./ssh";

export interface StackContext {
  readonly name: string;
  readonly config: RelayConfig;
  readonly plan: Plan;
  /** The stack's server (or --host). */
  readonly ssh: SshTarget;
  /** Removes the temporary key files. */
  cleanup(): void;
}

export interface StackOptions {
  readonly stack: string;
  readonly cwd: string;
  readonly knownHosts?: string;
  /** Another address for the stack's server (--host). */
  readonly host?: string;
  /** Another private key for it (--ssh-key). */
  readonly sshKey?: string;
}

function openStack(opts: StackOptions): StackContext {
  const target = stackTarget(opts.stack, opts.cwd, opts.knownHosts);
  try {
    const { config } = target;
    const plan = planRelay(config, loadAssets(config));
    // The stack's host key (sshHostKey) names the stack's host; another host is checked against --known-hosts.
    const ssh: SshTarget =
      opts.host !== undefined && opts.host !== target.ssh.host
        ? otherServer(target.ssh, opts.host, opts.sshKey, opts.knownHosts)
        : { ...target.ssh, ...(opts.sshKey !== undefined ? { keyFile: opts.sshKey } : {}) };
    return { name: opts.stack, config, plan, ssh, cleanup: () => target.cleanup() };
  } catch (e) {
    target.cleanup();
    throw e;
  }
}

/** Another server of the same relay: same user and port, the given key or the stack's. */
export function otherServer(base: SshTarget, host: string, keyFile?: string, knownHosts?: string): SshTarget {
  return {
    host,
    port: base.port,
    user: base.user,
    ...((keyFile ?? base.keyFile) !== undefined ? { keyFile: keyFile ?? base.keyFile } : {}),
    ...(knownHosts !== undefined ? { knownHostsFile: knownHosts } : {}),
  };
}

/** This checkout's version, as the manifest names it: `chatmail-relay 0.1.0 (<commit>)`. */
export function toolVersion(): string {
  const [commit, name] = versionStamp().split("\n");
  return `${name} (${commit.slice(0, 12)})`;
}

/** The manifest of an archive of `parts` of this relay, made now. */
export function newManifest(config: RelayConfig, parts: readonly Part[]): string {
  return manifestText({
    mailDomain: config.mailDomain,
    mailboxesDir: config.mailboxesDir,
    parts,
    created: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    tool: toolVersion(),
  });
}

/**
 * On Ctrl-C or SIGTERM: runs `cleanup` (the temporary key files, a half-written backup) before exiting, as the
 * normal end would. The remote side needs nothing: a stream cut off before its commit member changes nothing.
 */
/** The stack options of a command line: the stack, its project folder and an optional other server. */
export function stackOptions(opts: {
  stack: string;
  cwd: string;
  knownHosts?: string;
  host?: string;
  sshKey?: string;
}): StackOptions {
  return {
    stack: opts.stack,
    cwd: opts.cwd,
    ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}),
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.sshKey ? { sshKey: opts.sshKey } : {}),
  };
}

/**
 * Runs `f` with the stack opened, and always cleans up after it (the temporary SSH key files, and `alsoRemove`,
 * such as a half-written backup), also on Ctrl-C.
 */
export async function withStack<T>(
  opts: StackOptions,
  f: (stack: StackContext) => Promise<T>,
  alsoRemove: () => void = () => {},
): Promise<T> {
  const stack = openStack(opts);
  const cleanup = () => {
    stack.cleanup();
    alsoRemove();
  };
  const release = cleanupOnSignal(cleanup);
  try {
    return await f(stack);
  } finally {
    release();
    stack.cleanup();
  }
}

function cleanupOnSignal(cleanup: () => void): () => void {
  const handler = (signal: NodeJS.Signals) => {
    cleanup();
    process.stderr.write(
      `interrupted (${signal}); nothing was changed on the receiving server unless it said so\n`,
    );
    process.exit(130);
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}
