// Every text option against values that break the files options land in (a line break starts a new directive in
// dovecot.conf, a unit file or chatmail.ini; a space splits ReadWritePaths=; a quote ends a YAML string; `..`
// leaves the directory it names). Each must be refused with a message naming the option, or be provably
// harmless: the plan it gives has the same files, each with as many lines (for YAML the same keys, for unit files
// as many words per setting) as with a plain twin of the value.
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError, loadConfig, OPTION_NAMES, OPTIONS, type RelayConfig } from "../../core/config";
import type { RawValue } from "../../core/config/option";
import { planRelay } from "../../core/plan";
import { testAssets } from "../plan/helpers";

const BASE = { mailDomain: "chat.example.org" };

/** A hostile value and its plain twin (same shape, nothing special in it). */
const HOSTILE: [label: string, hostile: string, plain: string][] = [
  ["newline", "/srv/a\nb = c", "/srv/a_b_=_c"],
  ["carriage return", "/srv/a\rb", "/srv/a_b"],
  ["NUL", "/srv/a\u0000b", "/srv/a_b"],
  ["double quote", '/srv/a"b', "/srv/a_b"],
  ["single quote", "/srv/a'b", "/srv/a_b"],
  ["space", "/srv/a b", "/srv/a_b"],
  ["dot-dot", "/srv/../../etc", "/srv/xx/xx/etc"],
  ["unicode line separator", "/srv/a\u2028b", "/srv/a_b"],
  ["very long", `/srv/${"a".repeat(20000)}`, "/srv/a"],
  ["newline in an address", "ops@example.org\nx: y", "ops@example.org"],
  ["quote in an address", 'ops"x@example.org', "ops_x@example.org"],
  ["quote in a URL", 'https://example.org/"x', "https://example.org/x"],
  ["newline in a URL", "https://example.org/\nx", "https://example.org/x"],
];

const TEXT_OPTIONS = OPTION_NAMES.filter(
  (n) => OPTIONS[n].schemaType !== "integer" && OPTIONS[n].schemaType !== "boolean",
);

const raw = (name: string, value: string): RawValue =>
  OPTIONS[name as keyof typeof OPTIONS].schemaType === "array" ? [value] : value;

function tryLoad(name: string, value: string): RelayConfig | ConfigError {
  try {
    return loadConfig({ ...BASE, [name]: raw(name, value) });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
}

/** acmetool's configuration files are YAML: their structure is their keys, not only their lines. */
const YAML_FILE = /^\/var\/lib\/acme\/conf\//;

/** The keys of a YAML document, nested, or "invalid YAML". */
function yamlShape(text: string): string {
  const keys = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(keys)
      : typeof v === "object" && v !== null
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, keys(x)]))
        : typeof v;
  try {
    return JSON.stringify(keys(parse(text)));
  } catch {
    return "invalid YAML";
  }
}

/** Unit files: a space splits a list setting such as ReadWritePaths=, so their structure is words per setting. */
const UNIT_FILE = /^\/etc\/systemd\//;
const unitShape = (text: string) =>
  text
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => `${l.split("=")[0]}:${l.split(/\s+/).length}`)
    .join(" ");

/** Path -> the structure of each file of the plan: its line count, for YAML its keys, for units their words. */
function shape(config: RelayConfig): Map<string, string> {
  const plan = planRelay(config, testAssets());
  return new Map(
    plan.units.flatMap((u): [string, string][] => {
      if (u.kind !== "file") return [];
      if (typeof u.content !== "string") return [[u.path, "binary"]];
      const lines = `${u.content.split("\n").length} lines`;
      const detail = YAML_FILE.test(u.path)
        ? yamlShape(u.content)
        : UNIT_FILE.test(u.path)
          ? unitShape(u.content)
          : "";
      return [[u.path, `${lines} ${detail}`]];
    }),
  );
}

describe.each(TEXT_OPTIONS)("%s with hostile values", (name) => {
  it.each(HOSTILE)("%s: refused naming the option, or harmless", (_, hostile, plain) => {
    const result = tryLoad(name, hostile);
    if (result instanceof ConfigError) {
      const problem = result.message.split("\n").find((line) => line.includes(name));
      expect(problem, result.message).toBeDefined();
      // The message quotes at most a short part of the value, so a huge value does not flood the terminal.
      expect(result.message.length).toBeLessThan(600);
      return;
    }
    const twin = tryLoad(name, plain);
    expect(twin, `${name} accepts ${JSON.stringify(hostile)} but refuses its plain twin`).not.toBeInstanceOf(
      ConfigError,
    );
    expect(shape(result)).toEqual(shape(twin as RelayConfig));
  });
});
