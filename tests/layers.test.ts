// The layers of the tree, checked over every source file: core/ is pure (config, plan, DNS and web pages as
// functions of their inputs: no Pulumi, no file system, processes, sockets, clock, randomness or environment)
// and imports nothing outside core/; components/ adapts core/ to Pulumi; daemons/ runs on the server and takes
// from core/ only the server facts (core/server.ts) and, through daemons/config.ts alone, the daemons' own
// config (core/config/daemon.ts).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(__dirname, "..");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith(".ts") ? [path] : [];
  });
}

/** The repository-relative targets of a file's relative imports, and its package imports. */
function imports(path: string): { local: string[]; packages: string[] } {
  const specs = [...readFileSync(path, "utf8").matchAll(/(?:from|import|require\()\s*"([^"]+)"/g)].map(
    (m) => m[1],
  );
  return {
    local: specs.filter((s) => s.startsWith(".")).map((s) => relative(ROOT, resolve(dirname(path), s))),
    packages: specs.filter((s) => !s.startsWith(".")),
  };
}

const files = (dir: string) => sources(join(ROOT, dir)).map((p) => [relative(ROOT, p), p] as const);

describe("core/", () => {
  it.each(files("core"))("%s is pure", (_, path) => {
    const code = readFileSync(path, "utf8");
    const { packages } = imports(path);
    expect(
      packages.filter((p) => /^(@pulumi\/|node:(fs|child_process|net|os|http|https|dgram)|fs$)/.test(p)),
    ).toEqual([]);
    expect(code).not.toMatch(/\b(Date\.now|new Date\(|Math\.random|process\.env)\b/);
  });

  it.each(files("core"))("%s imports only core/", (_, path) => {
    expect(imports(path).local.filter((t) => !t.startsWith("core/"))).toEqual([]);
  });
});

describe("daemons/", () => {
  /** What a daemons/ file may import from outside daemons/. */
  const allowed = (file: string): string[] =>
    file === "daemons/config.ts" ? ["core/server", "core/config/daemon"] : ["core/server"];

  it.each(files("daemons"))(
    "%s imports from outside daemons/ only the server facts and its config",
    (file, path) => {
      const outside = imports(path).local.filter((t) => !t.startsWith("daemons/"));
      expect(outside.filter((t) => !allowed(file).includes(t))).toEqual([]);
    },
  );
});
