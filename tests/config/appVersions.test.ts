import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAssets } from "../../components/assets";
import { appVersionsJson } from "../../core/config";
import { PATHS } from "../../core/plan/facts";
import { planRelay } from "../../core/plan";
import { configFor, testAssets, text } from "../plan/helpers";

const source = (over: Record<string, unknown> = {}) => ({
  sourceId: "gplay",
  versionInteger: 760,
  versionString: "2.60.0",
  downloadUrl: "https://github.com/deltachat/deltachat-android/releases/download/v2.60.0/app.apk",
  ...over,
});
const file = (clients: unknown) => JSON.stringify({ clients }, null, 2);
const valid = file([{ clientId: "deltachat", sources: [source(), source({ sourceId: "fdroid" })] }]);

describe("appVersionsFile", () => {
  it("is kept as one line of JSON, on the server for the metadata daemon", () => {
    expect(appVersionsJson(valid)).toBe(JSON.stringify(JSON.parse(valid)));
    const plan = planRelay(configFor(), { ...testAssets(), appVersions: valid });
    expect(text(plan, PATHS.appVersions)).toBe(`${JSON.stringify(JSON.parse(valid))}\n`);
    expect(planRelay(configFor(), testAssets()).units.some((u) => u.id === `file:${PATHS.appVersions}`)).toBe(
      false,
    );
  });

  it.each([
    ["{", /not JSON/],
    ["[]", /one JSON object/],
    [JSON.stringify({ clients: [], extra: 1 }), /the object has the keys \["clients","extra"\]/],
    [file([]), /clients must be a non-empty list/],
    [file([{ clientId: "a", sources: [] }]), /clients\[0\]\.sources must be a non-empty list/],
    [file([{ clientId: "", sources: [source()] }]), /clients\[0\]\.clientId must be non-empty text/],
    [
      file([
        { clientId: "a", sources: [source()] },
        { clientId: "a", sources: [source()] },
      ]),
      /clients\[1\]\.clientId "a" is not unique/,
    ],
    [
      file([{ clientId: "a", sources: [source(), source()] }]),
      /sources\[1\]\.sourceId "gplay" is not unique/,
    ],
    [
      file([{ clientId: "a", sources: [source({ versionInteger: true })] }]),
      /versionInteger must be a whole/,
    ],
    [
      file([{ clientId: "a", sources: [source({ versionInteger: 2 ** 32 })] }]),
      /versionInteger must be a whole/,
    ],
    [file([{ clientId: "a", sources: [source({ versionInteger: 1.5 })] }]), /versionInteger must be a whole/],
    [file([{ clientId: "a", sources: [source({ versionString: "" })] }]), /versionString must be non-empty/],
    [
      file([{ clientId: "a", sources: [source({ downloadUrl: "https://evil.example/app.apk" })] }]),
      /downloadUrl "https:\/\/evil\.example\/app\.apk" must start with https:\/\/github\.com\/deltachat\//,
    ],
    [file([{ clientId: "a", sources: [{ ...source(), size: 1 }] }]), /sources\[0\] has the keys/],
  ])("refuses %s at preview, naming appVersionsFile and the field", (content, message) => {
    expect(() => appVersionsJson(content)).toThrow(/^appVersionsFile: /);
    expect(() => appVersionsJson(content)).toThrow(message);
    expect(() => planRelay(configFor(), { ...testAssets(), appVersions: content })).toThrow(message);
  });

  it("is read from the operator's machine; a missing file is an error naming the option", () => {
    const dir = mkdtempSync(join(tmpdir(), "appversions-"));
    try {
      const path = join(dir, "appversions.json");
      writeFileSync(path, valid);
      expect(loadAssets({ appVersionsFile: path }).appVersions).toBe(valid);
      expect(() => loadAssets({ appVersionsFile: join(dir, "missing.json") })).toThrow(
        /^appVersionsFile: cannot read ".*missing\.json" \(ENOENT\)/,
      );
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
