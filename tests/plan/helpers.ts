// Builds relay plans for the plan tests: a config from chatmail.ini lines, assets read from this checkout
// (templates/, www/) with a stand-in daemon bundle, and helpers to look at or write out the planned files.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { readTemplates } from "../../components/assets";
import { DEFAULT_WWW_FOLDER, loadWebsiteSources } from "../../components/websiteSources";
import { parseChatmailIni } from "../../core/config";
import type { RelayConfig } from "../../core/config";
import { planRelay, type Assets, type Plan } from "../../core/plan";
import type { FileUnit, Unit } from "../../core/plan/types";

export const ROOT = join(__dirname, "../..");
export const DOMAIN = "chat.example.org";

let cachedAssets: Assets | undefined;

/** Templates and web pages of this checkout; the daemon bundle is a stand-in (bundling is not under test here). */
export function testAssets(): Assets {
  cachedAssets ??= {
    templates: readTemplates(),
    daemonBundle: "// test bundle\n",
    website: loadWebsiteSources(DEFAULT_WWW_FOLDER),
    version: "0123456789abcdef0123456789abcdef01234567\nchatmail-relay 0.1.0\n",
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

/** A throw-away P-256 certificate for chat.example.org in `dir`, for services run from rendered configs. */
export function testCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-days", "2"].concat([
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      `/CN=${DOMAIN}`,
    ]),
    { stdio: "ignore" },
  );
  return { cert, key };
}
