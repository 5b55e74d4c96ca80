// The plan is a pure function of config and assets (style-anchors §5.2): its code imports no Pulumi, no file
// system, no processes or sockets, and reads no clock or randomness.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith(".ts") ? [path] : [];
  });
}

describe("components/plan", () => {
  it.each(sources(join(ROOT, "components/plan")).map((p) => [relative(ROOT, p), p]))(
    "%s is pure",
    (_, path) => {
      const code = readFileSync(path, "utf8");
      expect(code).not.toMatch(/from "(@pulumi\/[^"]*|node:fs[^"]*|fs|node:child_process|node:net|node:os)"/);
      expect(code).not.toMatch(/\b(Date\.now|new Date|Math\.random|process\.env)\b/);
    },
  );
});
