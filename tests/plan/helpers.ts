// Builds relay plans for the plan tests: a config from chatmail.ini lines, assets read from this checkout
// (templates/, www/) with a stand-in daemon bundle, and helpers to look at or write out the planned files.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseChatmailIni } from "../../components/config";
import type { RelayConfig } from "../../components/config";
import { planRelay, type Assets, type Plan } from "../../components/plan";
import type { FileUnit, Unit } from "../../components/plan/types";

export const ROOT = join(__dirname, "../..");
export const DOMAIN = "chat.example.org";

function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path).split("\\").join("/"), readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

let cachedAssets: Assets | undefined;

/** Templates and web pages of this checkout; the daemon bundle is a stand-in (bundling is not under test here). */
export function testAssets(): Assets {
  cachedAssets ??= {
    templates: new Map(
      [...readTree(join(ROOT, "templates"))].map(([name, data]) => [name, data.toString("utf8")]),
    ),
    daemonBundle: "// test bundle\n",
    website: readTree(join(ROOT, "www")),
    version: "chatmail-relay 0.1.0 test\n",
  };
  return cachedAssets;
}

/** A config from chatmail.ini keys (snake_case, as an operator writes them); mail_domain defaults to DOMAIN. */
export function configFor(ini: Record<string, string> = {}): RelayConfig {
  const lines = Object.entries({ mail_domain: DOMAIN, ...ini }).map(([k, v]) => `${k} = ${v}`);
  return parseChatmailIni(`[params]\n${lines.join("\n")}\n`).config;
}

export function planFor(ini: Record<string, string> = {}): Plan {
  return planRelay(configFor(ini), testAssets());
}

export function fileUnits(plan: Plan): FileUnit[] {
  return plan.units.filter((u): u is FileUnit => u.kind === "file");
}

export function unit(plan: Plan, id: string): Unit {
  const found = plan.units.find((u) => u.id === id);
  if (!found) throw new Error(`no unit ${id} in the plan`);
  return found;
}

/** The text of the planned file at `path`. */
export function text(plan: Plan, path: string): string {
  const file = fileUnits(plan).find((f) => f.path === path);
  if (!file) throw new Error(`the plan writes no ${path}`);
  if (typeof file.content !== "string") throw new Error(`${path} is binary`);
  return file.content;
}

/** Writes the planned files whose path passes `keep` below `root`, as the server would have them. */
export function writeTree(plan: Plan, root: string, keep: (path: string) => boolean = () => true): void {
  for (const file of fileUnits(plan)) {
    if (!keep(file.path)) continue;
    const target = join(root, file.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, file.content);
  }
}
