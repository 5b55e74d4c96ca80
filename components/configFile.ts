// Reads an operator's config file (a stack file or a chatmail.ini) for the command-line tools. A path that does
// not lead to a readable file is a ConfigError naming it, so the tools print one line instead of a stack trace.
import { readFileSync } from "node:fs";
import { ConfigError } from "../core/config";

const REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "is a folder, not a file",
  EACCES: "not readable (permission denied)",
};

/** The UTF-8 text of `path`; `what` says which file is expected ("a Pulumi stack file like Pulumi.prod.yaml"). */
export function readConfigFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    throw new ConfigError(
      `${path}: ${REASONS[code] ?? `cannot be read (${code})`}; give the path of ${what}`,
    );
  }
}
