// Reads a web page folder into memory. This is the website's only file access: buildWebsite() stays pure and
// gets the folder's bytes from here (the plan reads the folder once, tests can build from in-memory maps).
import * as fs from "node:fs";
import * as path from "node:path";
import type { WebsiteSources } from "../core/website/types";

/** The project's own pages, used when the config leaves wwwFolder empty. */
export const DEFAULT_WWW_FOLDER = path.resolve(__dirname, "..", "www");

/** The folder to build from: the operator's wwwFolder, or the project's www/. */
export function websiteFolder(config: { readonly wwwFolder: string }): string {
  return config.wwwFolder === "" ? DEFAULT_WWW_FOLDER : path.resolve(config.wwwFolder);
}

/**
 * Every file under `dir`, keyed by its relative path with "/" separators, sorted. Dot files and dot folders
 * (.git, .DS_Store, editor swap files) are left out: they are never meant to be published or shipped. This is the
 * one reader of project and operator folders (templates/, www/, wwwFolder).
 */
export function readFolder(dir: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const walk = (relative: string) => {
    const entries = fs.readdirSync(path.join(dir, relative), { withFileTypes: true });
    for (const name of entries.map((e) => e.name).sort()) {
      if (name.startsWith(".")) continue;
      const rel = relative === "" ? name : `${relative}/${name}`;
      const stat = fs.statSync(path.join(dir, rel));
      if (stat.isDirectory()) walk(rel);
      else if (stat.isFile()) files.set(rel, new Uint8Array(fs.readFileSync(path.join(dir, rel))));
    }
  };
  walk("");
  return files;
}

/** The web page sources in `dir` (see readFolder); a `dir` that is not a folder is an error naming wwwFolder. */
export function loadWebsiteSources(dir: string): WebsiteSources {
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`wwwFolder: "${dir}" is not a folder; point it at a folder of web page sources`);
  }
  return readFolder(dir);
}
