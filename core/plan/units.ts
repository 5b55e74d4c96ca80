// Short constructors for units, so each part reads like the list of what it puts on the server.
import type { RelayConfig } from "../config";
import type { PlanContext } from "./context";
import { q } from "./sh";
import type {
  CheckUnit,
  DirectoryRemoval,
  DirectoryUnit,
  DownloadUnit,
  FileUnit,
  LineUnit,
  OnceUnit,
  PackagesUnit,
  Phase,
  ServiceUnit,
  SysctlUnit,
  UserUnit,
} from "./types";

interface Owned {
  owner?: string;
  group?: string;
  mode?: string;
  after?: string[];
}

/** A file rendered from templates/<template>; the id is `file:<path>`. */
export function templateFile(
  ctx: PlanContext,
  path: string,
  template: string,
  opts: Owned & { vars?: Record<string, unknown>; secret?: boolean; then?: string } = {},
): FileUnit {
  return contentFile(path, ctx.render(template, { ...ctx.vars, ...opts.vars }), opts);
}

/** A file with content computed in code (bundles, web pages, chatmail.ini). */
export function contentFile(
  path: string,
  content: string | Uint8Array,
  opts: Owned & { secret?: boolean; then?: string } = {},
): FileUnit {
  return {
    kind: "file",
    id: `file:${path}`,
    phase: "configure",
    after: opts.after ?? [],
    path,
    owner: opts.owner ?? "root",
    group: opts.group ?? opts.owner ?? "root",
    mode: opts.mode ?? "0644",
    content,
    secret: opts.secret ?? false,
    ...(opts.then ? { then: opts.then } : {}),
  };
}

/** A directory; once a later plan drops it, it is removed only when empty unless `removal` says otherwise. */
export function directory(
  path: string,
  opts: Owned & { phase?: Phase; removal?: DirectoryRemoval } = {},
): DirectoryUnit {
  return {
    kind: "directory",
    id: `dir:${path}`,
    phase: opts.phase ?? "configure",
    after: opts.after ?? [],
    path,
    owner: opts.owner ?? "root",
    group: opts.group ?? opts.owner ?? "root",
    mode: opts.mode ?? "0755",
    removal: opts.removal ?? "when-empty",
  };
}

export function packages(name: string, list: string[], debconf: string[] = []): PackagesUnit {
  return { kind: "packages", id: `packages:${name}`, phase: "install", after: [], packages: list, debconf };
}

export function user(
  name: string,
  opts: { home?: string; extraGroups?: string[]; after?: string[]; phase?: Phase } = {},
): UserUnit {
  return {
    kind: "user",
    id: `user:${name}`,
    phase: opts.phase ?? "system",
    after: opts.after ?? [],
    name,
    group: name,
    home: opts.home ?? `/home/${name}`,
    extraGroups: opts.extraGroups ?? [],
  };
}

export function service(
  name: string,
  opts: {
    restartOn?: string[];
    reloadOn?: string[];
    after?: string[];
    enabled?: boolean;
    running?: boolean;
    ready?: string;
  } = {},
): ServiceUnit {
  return {
    kind: "service",
    id: `service:${name}`,
    phase: "activate",
    after: opts.after ?? [],
    name,
    enabled: opts.enabled ?? true,
    running: opts.running ?? true,
    restartOn: opts.restartOn ?? [],
    reloadOn: opts.reloadOn ?? [],
    ...(opts.ready ? { ready: opts.ready } : {}),
  };
}

/**
 * The wanted state of Postfix and Dovecot: running and enabled, or with acceptMail false stopped and disabled (no
 * mail accepted, no IMAP) while their files, checks and every other service are deployed as usual. The service
 * step stops a service meant to be off also when its files change (steps.ts), and the package scripts of an
 * upgrade do not start a disabled one.
 */
export function mailServiceState(config: RelayConfig): { enabled: boolean; running: boolean } {
  return { enabled: config.acceptMail, running: config.acceptMail };
}

export function once(
  id: string,
  description: string,
  creates: string,
  script: string,
  opts: { after?: string[]; then?: string } = {},
): OnceUnit {
  return {
    kind: "once",
    id: `once:${id}`,
    phase: "configure",
    after: opts.after ?? [],
    description,
    creates,
    script,
    ...(opts.then ? { then: opts.then } : {}),
  };
}

/** A refusal check; runs before anything changes unless a later phase is given. */
export function check(
  id: string,
  description: string,
  script: string,
  phase: Phase = "preflight",
): CheckUnit {
  return { kind: "check", id: `check:${id}`, phase, after: [], description, script };
}

/**
 * A check of the written configuration by the service's own tool, right before the service restarts, so that a
 * bad file fails the deploy while the service keeps running on its previous configuration (cmdeploy runs
 * postconf and doveconf the same way in chatmail/relay 1.12.0: cmdeploy/src/cmdeploy/postfix/deployer.py and
 * dovecot/deployer.py). The hashes of the files it checks are part of its hash (`covers`), so it
 * runs again whenever one of them changes; a check of a secret file has a secret hash, like the file.
 * `command` exits non-zero on a problem; its output is shown.
 */
export function validation(
  name: string,
  service: string,
  command: string,
  files: FileUnit[],
  after: string[] = [],
): CheckUnit {
  const script = [
    ...files.map((f) => `# checks ${f.path}`),
    `if ! out=$({ ${command}; } 2>&1); then`,
    `  echo ${q(`${service}: its configuration was refused; ${service} keeps running with the previous one:`)} >&2`,
    `  echo "$out" >&2`,
    "  exit 1",
    "fi",
  ].join("\n");
  return {
    kind: "check",
    id: `check:${name}`,
    phase: "activate",
    after,
    description: `${command} accepts the configuration`,
    script,
    covers: ids(files),
  };
}

/** A release binary: the archive at `url` is fetched, `member` checked against `sha256` and installed at `path`. */
export function download(path: string, url: string, member: string, sha256: string): DownloadUnit {
  return { kind: "download", id: `download:${path}`, phase: "install", after: [], url, sha256, member, path };
}

/** A line kept in a file others also write; an older line starting with `replaces` is swapped for it. */
export function line(path: string, text: string, replaces: string): LineUnit {
  return {
    kind: "line",
    id: `line:${path}:${replaces}`,
    phase: "configure",
    after: [],
    path,
    line: text,
    replaces,
  };
}

export function sysctl(key: string, minimum: number): SysctlUnit {
  return { kind: "sysctl", id: `sysctl:${key}`, phase: "system", after: [], key, minimum };
}

/** The id of the file unit for `path`, for restartOn lists that name files of another part. */
export const fileId = (path: string) => `file:${path}`;

/** Ids of units, for restartOn lists. */
export const ids = (units: { id: string }[]) => units.map((u) => u.id);
