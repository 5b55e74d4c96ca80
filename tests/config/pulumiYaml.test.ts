import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { OPTIONS } from "../../core/config";
import { pulumiYaml } from "../../core/config/pulumiYaml";

const root = join(__dirname, "../..");

describe("Pulumi.yaml", () => {
  it("is the file generated from the options table (run `npm run gen:pulumi-yaml` after changing options)", () => {
    expect(readFileSync(join(root, "Pulumi.yaml"), "utf8")).toBe(pulumiYaml());
  });

  it("declares every option with the same type, default and secret flag as the code", () => {
    const schema = parse(readFileSync(join(root, "Pulumi.yaml"), "utf8")).config as Record<string, any>;
    expect(Object.keys(schema).sort()).toEqual(Object.keys(OPTIONS).sort());
    for (const [name, option] of Object.entries(OPTIONS)) {
      const entry = schema[name];
      expect(entry.type, name).toBe(option.schemaType);
      expect(entry.description, name).toBe(option.description);
      // The CLI refuses a plain default for a key marked secret, so only required secrets are marked.
      expect(entry.secret ?? false, name).toBe(option.secret && option.required);
      // The CLI refuses a stack that lacks a key with no default, so only required options go without.
      expect(entry.default === undefined, name).toBe(option.required);
      if (option.secret && entry.default !== undefined) expect(entry.default, name).toHaveLength(0);
    }
  });

  it("gives the program the code's defaults when a stack sets only the required options", async () => {
    const { loadConfig } = await import("../../core/config");
    const schema = parse(readFileSync(join(root, "Pulumi.yaml"), "utf8")).config as Record<string, any>;
    // What the CLI hands the program: the stack's values, and each schema default for a key it lacks.
    const fromCli = Object.fromEntries(
      Object.entries(schema)
        .filter(([, entry]) => entry.default !== undefined)
        .map(([name, entry]) => [
          name,
          Array.isArray(entry.default) ? JSON.stringify(entry.default) : entry.default,
        ]),
    );
    const minimum = { mailDomain: "chat.example.org", sshPrivateKey: "key" };
    expect(loadConfig({ ...fromCli, ...minimum })).toEqual(loadConfig(minimum));
  });
});

describe("Pulumi.prod.yaml", () => {
  it("is a valid example stack for chat.example.org", async () => {
    const { loadConfig } = await import("../../core/config");
    const stack = parse(readFileSync(join(root, "Pulumi.prod.yaml"), "utf8")).config as Record<
      string,
      unknown
    >;
    const raw = Object.fromEntries(
      Object.entries(stack).map(([k, v]) => [
        k.replace("chatmail-relay:", ""),
        Array.isArray(v) ? JSON.stringify(v) : v,
      ]),
    );
    const config = loadConfig(raw as Record<string, string>);
    expect(config.mailDomain).toBe("chat.example.org");
    expect(config.languages).toEqual(["EN", "RU"]);
  });
});

describe("README.md", () => {
  it("carries the option reference generated from the options table", async () => {
    const { withOptionsReference } = await import("../../core/config/pulumiYaml");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    expect(withOptionsReference(readme)).toBe(readme);
  });
});
