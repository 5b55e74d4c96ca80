// Reads what the plan needs from disk, once: templates, the daemon bundle, web page sources, the version.
// The plan itself does no I/O; the Pulumi program, `npm run render` and the testbed all load assets here.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { buildSync } from "esbuild";
import type { Assets } from "../core/plan";
import { loadWebsiteSources, readFolder, websiteFolder } from "./websiteSources";

export const PROJECT_ROOT = join(__dirname, "..");

/**
 * The daemon bundle: daemons/main.ts and everything it imports in one file for the server's Node 18 (Debian 12's
 * nodejs). This is the only build of the daemons: the plan ships it, `npm run build:daemons` writes it to dist/,
 * the tests and benchmarks run it (writeDaemonBundle). Module comments name paths relative to the project, so the
 * same sources give the same bytes wherever they are built.
 */
export function bundleDaemons(): string {
  const result = buildSync({
    entryPoints: [join(PROJECT_ROOT, "daemons/main.ts")],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    platform: "node",
    target: "node18",
    format: "cjs",
    write: false,
    legalComments: "none",
    banner: { js: "// chatmaild: the chatmail relay's daemons, bundled by esbuild from daemons/main.ts" },
  });
  return result.outputFiles[0].text;
}

/** Writes the daemon bundle to `path` (its directory is created) and returns `path`. */
export function writeDaemonBundle(path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bundleDaemons());
  return path;
}

export function versionStamp(): string {
  const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  let revision = "unknown";
  try {
    revision = execFileSync("git", ["rev-parse", "HEAD"], { cwd: PROJECT_ROOT, encoding: "utf8" }).trim();
  } catch {
    // Not a git checkout (a release tarball): the version alone identifies it.
  }
  // Upstream's layout (cmdeploy's GithashDeployer): the commit on the first line, which upstream's tooling and
  // tests compare with `git rev-parse HEAD`; our version follows on the second.
  return `${revision}\nchatmail-relay ${version}\n`;
}

/** The assets for a config's wwwFolder and appVersionsFile ("" or absent: the project's pages, no app versions). */
export function loadAssets(opts: { wwwFolder?: string; appVersionsFile?: string } = {}): Assets {
  const website = loadWebsiteSources(websiteFolder({ wwwFolder: opts.wwwFolder ?? "" }));
  const assets = {
    templates: readTemplates(),
    daemonBundle: bundleDaemons(),
    website,
    version: versionStamp(),
  };
  return opts.appVersionsFile ? { ...assets, appVersions: readAppVersions(opts.appVersionsFile) } : assets;
}

/** The operator's app versions file; one that cannot be read is an error naming appVersionsFile. */
function readAppVersions(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(
      `appVersionsFile: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); point it at a JSON file of app versions`,
    );
  }
}

/** templates/ by relative path, as text. */
export function readTemplates(): Map<string, string> {
  const utf8 = new TextDecoder();
  return new Map(
    [...readFolder(join(PROJECT_ROOT, "templates"))].map(([name, data]) => [name, utf8.decode(data)]),
  );
}
