import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError, OPTIONS } from "../../core/config";
import { parseStackFile, pulumiYaml } from "../../core/config/pulumiYaml";

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

describe("parseStackFile", () => {
  it("reads the stack's options and leaves encrypted ones out with a note", () => {
    const text = [
      "config:",
      "  chatmail-relay:mailDomain: chat.example.org",
      "  chatmail-relay:deleteMailsAfter: 30",
      "  chatmail-relay:sshPrivateKey:",
      "    secure: AAABAC",
      "  other:key: x",
    ].join("\n");
    const { config, notes } = parseStackFile(text, "Pulumi.x.yaml");
    expect(config.deleteMailsAfter).toBe(30);
    expect(notes).toEqual(["sshPrivateKey: encrypted in the stack file, left out of this offline render"]);
  });

  it("reports broken YAML with the file's name and the parser's line, not a stack trace", () => {
    const broken = 'config:\n  chatmail-relay:mailDomain: "chat.example.org\n  x: [\n';
    expect(() => parseStackFile(broken, "Pulumi.broken.yaml")).toThrow(ConfigError);
    expect(() => parseStackFile(broken, "Pulumi.broken.yaml")).toThrow(
      /^Pulumi\.broken\.yaml: not valid YAML: .*line/,
    );
  });

  it("reports a file that is not a stack file, naming it", () => {
    expect(() => parseStackFile("- a\n- b\n", "Pulumi.list.yaml")).toThrow(
      /^Pulumi\.list\.yaml: not a stack file; expected a mapping with a config: mapping/,
    );
    expect(() => parseStackFile("config: 5\n", "Pulumi.five.yaml")).toThrow(
      /^Pulumi\.five\.yaml: not a stack file/,
    );
  });

  it("passes a large YAML number on as it is, so loadConfig refuses it instead of rounding it", () => {
    const text =
      "config:\n  chatmail-relay:mailDomain: chat.example.org\n  chatmail-relay:deleteMailsAfter: 1e+23\n";
    expect(() => parseStackFile(text, "Pulumi.x.yaml")).toThrow(
      /deleteMailsAfter: 1e\+23 is not allowed; use a whole number from 1 to 9007199254740991/,
    );
  });
});
