// Which stacks the fleet command runs on: the ones named by --stacks, the ones a fleet file lists, or every
// stack of the project in the current backend; --stack-filter narrows any of them.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { UsageError, type FleetOptions } from "./args";

/** One stack of the fleet and the Pulumi project folder it belongs to. */
export interface StackTarget {
  readonly name: string;
  readonly workDir: string;
}

/**
 * The stacks of a fleet file: a YAML list whose items are stack names, or `{name, workDir}` maps. A relative
 * workDir is relative to the fleet file's folder; a stack without one uses `defaultWorkDir` (--cwd).
 */
export function parseFleetFile(text: string, file: string, defaultWorkDir: string): StackTarget[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!Array.isArray(doc))
    throw new UsageError(
      `${file}: expected a YAML list of stack names (or of {name, workDir}), got ${kind(doc)}`,
    );
  const base = dirname(resolve(file));
  return doc.map((item: unknown, i) => {
    const where = `${file}: item ${i + 1}`;
    if (typeof item === "string" && item.trim() !== "")
      return { name: item.trim(), workDir: resolve(defaultWorkDir) };
    if (item && typeof item === "object" && !Array.isArray(item)) {
      const entry = item as Record<string, unknown>;
      const unknownKeys = Object.keys(entry).filter((k) => k !== "name" && k !== "workDir");
      if (unknownKeys.length > 0)
        throw new UsageError(`${where}: unknown key '${unknownKeys[0]}' (allowed: name, workDir)`);
      if (typeof entry.name !== "string" || entry.name.trim() === "")
        throw new UsageError(`${where}: 'name' must be a stack name`);
      if (entry.workDir !== undefined && (typeof entry.workDir !== "string" || entry.workDir === ""))
        throw new UsageError(`${where}: 'workDir' must be a folder`);
      return {
        name: entry.name.trim(),
        workDir: entry.workDir === undefined ? resolve(defaultWorkDir) : resolve(base, entry.workDir),
      };
    }
    throw new UsageError(`${where}: expected a stack name or {name, workDir}, got ${kind(item)}`);
  });
}

const kind = (v: unknown) =>
  v === null || v === undefined ? "nothing" : Array.isArray(v) ? "a list" : `a ${typeof v}`;

/** The stacks whose name matches `filter` (all without one). */
export function filterStacks(stacks: readonly StackTarget[], filter: RegExp | undefined): StackTarget[] {
  return filter ? stacks.filter((s) => filter.test(s.name)) : [...stacks];
}

/**
 * The fleet of `opts`, in order, each stack once. `listBackend` lists the stacks of the project in a folder
 * (the Automation API's `listStacks()`; a parameter so that tests need no Pulumi CLI).
 */
export async function resolveStacks(
  opts: Pick<FleetOptions, "cwd" | "stacks" | "fleetFile" | "stackFilter">,
  listBackend: (workDir: string) => Promise<string[]>,
  readText: (path: string) => string = (p) => readFileSync(p, "utf8"),
): Promise<StackTarget[]> {
  const cwd = resolve(opts.cwd);
  let all: StackTarget[];
  let source: string;
  if (opts.stacks) {
    all = opts.stacks.map((name) => ({ name, workDir: cwd }));
    source = `--stacks ${opts.stacks.join(",")}`;
  } else if (opts.fleetFile) {
    let text: string;
    try {
      text = readText(opts.fleetFile);
    } catch (e) {
      throw new UsageError(`--fleet-file ${opts.fleetFile}: ${(e as Error).message}`);
    }
    all = parseFleetFile(text, opts.fleetFile, cwd);
    source = `fleet file ${opts.fleetFile}`;
  } else {
    all = (await listBackend(cwd)).map((name) => ({ name, workDir: cwd }));
    source = `the backend's stacks of the project in ${cwd}`;
  }
  const seen = new Set<string>();
  for (const s of all) {
    const key = `${s.workDir}\0${s.name}`;
    if (seen.has(key)) throw new UsageError(`${source}: stack ${s.name} is listed twice`);
    seen.add(key);
  }
  if (all.length === 0) throw new UsageError(`no stacks: ${source} has none`);
  const chosen = filterStacks(all, opts.stackFilter);
  if (chosen.length === 0)
    throw new UsageError(
      `no stack matches --stack-filter '${opts.stackFilter!.source}' (${source}: ${all.map((s) => s.name).join(", ")})`,
    );
  return chosen;
}
