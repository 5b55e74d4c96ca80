// Short constructors for units, so each part reads like the list of what it puts on the server.
import type { PlanContext } from "./context";
import type {
  DirectoryUnit,
  FileUnit,
  OnceUnit,
  PackagesUnit,
  Phase,
  ServiceUnit,
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

export function directory(path: string, opts: Owned & { phase?: Phase } = {}): DirectoryUnit {
  return {
    kind: "directory",
    id: `dir:${path}`,
    phase: opts.phase ?? "configure",
    after: opts.after ?? [],
    path,
    owner: opts.owner ?? "root",
    group: opts.group ?? opts.owner ?? "root",
    mode: opts.mode ?? "0755",
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
  };
}

export function once(id: string, description: string, creates: string, script: string, after: string[] = []): OnceUnit {
  return { kind: "once", id: `once:${id}`, phase: "configure", after, description, creates, script };
}

/** Ids of units, for restartOn lists. */
export const ids = (units: { id: string }[]) => units.map((u) => u.id);
