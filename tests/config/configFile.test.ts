// readConfigFile: how the command-line tools (render, import-ini) report a config file they cannot read.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readConfigFile } from "../../components/configFile";
import { ConfigError } from "../../core/config";

describe("readConfigFile", () => {
  it("names a missing file and what was expected, as a ConfigError (one line, no stack trace)", () => {
    const read = () => readConfigFile("/nonexistent/Pulumi.prod.yaml", "a Pulumi stack file");
    expect(read).toThrow(ConfigError);
    expect(read).toThrow("/nonexistent/Pulumi.prod.yaml: no such file; give the path of a Pulumi stack file");
  });

  it("names a folder given in place of a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "config-file-"));
    try {
      expect(() => readConfigFile(dir, "a chatmail.ini")).toThrow(`${dir}: is a folder, not a file`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
