// loadWebsiteSources and websiteFolder: the only file access of the website build.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadAssets } from "../../components/assets";
import { DEFAULT_WWW_FOLDER, loadWebsiteSources, websiteFolder } from "../../components/websiteSources";
import { text } from "./helpers";

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function folder(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "www-"));
  dirs.push(dir);
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe("loadWebsiteSources", () => {
  it("reads every file below the folder, keyed by relative path with / separators, sorted", () => {
    const dir = folder({ "src/main.css": "body{}", "src/locales/EN/index.md": "# Hi", "README.md": "x" });
    const sources = loadWebsiteSources(dir);
    expect([...sources.keys()]).toEqual(["README.md", "src/locales/EN/index.md", "src/main.css"]);
    expect(text(sources.get("src/locales/EN/index.md"))).toBe("# Hi");
  });

  it("leaves out dot files and dot folders", () => {
    const dir = folder({ ".git/config": "x", "src/.index.md.swp": "x", "src/index.md": "x" });
    expect([...loadWebsiteSources(dir).keys()]).toEqual(["src/index.md"]);
  });

  it("rejects a path that is not a folder, naming wwwFolder", () => {
    expect(() => loadWebsiteSources("/nonexistent/www")).toThrow(
      'wwwFolder: "/nonexistent/www" is not a folder',
    );
  });
});

describe("loadAssets", () => {
  it("reads the operator's wwwFolder without its dot files, so .git/ is never deployed", () => {
    const dir = folder({
      ".git/config": "[remote]",
      ".env": "TOKEN=x",
      "sub/.htpasswd": "x",
      "index.html": "hi",
    });
    expect([...loadAssets({ wwwFolder: dir }).website.keys()]).toEqual(["index.html"]);
  });
});

describe("websiteFolder", () => {
  it("is the project's www/ when wwwFolder is empty, else the operator's folder", () => {
    expect(websiteFolder({ wwwFolder: "" })).toBe(DEFAULT_WWW_FOLDER);
    expect(fs.existsSync(path.join(DEFAULT_WWW_FOLDER, "src", "page-layout.html"))).toBe(true);
    expect(websiteFolder({ wwwFolder: "/srv/my-pages" })).toBe("/srv/my-pages");
  });
});
