// The fleet command line: one command, where the stacks come from, how many run at once. Every mistake is a
// UsageError whose message names the input it is about; the CLI prints it on one line and exits 2.
import { parseArgs } from "node:util";

export const COMMANDS = ["preview", "up", "outputs", "check"] as const;
export type Command = (typeof COMMANDS)[number];

export interface FleetOptions {
  readonly command: Command;
  /** The Pulumi project folder: the default workDir of every stack, and where the backend's stacks are listed. */
  readonly cwd: string;
  /** `--stacks a,b`: these stacks instead of the backend's. */
  readonly stacks?: readonly string[];
  /** `--fleet-file fleet.yaml`: the stacks listed there instead of the backend's. */
  readonly fleetFile?: string;
  /** `--stack-filter REGEX`: only stacks whose name matches. */
  readonly stackFilter?: RegExp;
  readonly concurrency: number;
  /** Start no new stack after the first failure. */
  readonly failFast: boolean;
  readonly json: boolean;
  /** What follows `--`: passed to every `npm run check` as it is. */
  readonly extra: readonly string[];
}

export class UsageError extends Error {}

export const DEFAULT_CONCURRENCY = 2;

export const USAGE = `Usage: npm run fleet -- COMMAND [options] [-- CHECK ARGS]

Commands (each on every stack of the fleet, a few at a time):
  preview               pulumi preview --diff: what up would change
  up                    pulumi up
  outputs               the stacks' outputs (secret ones shown as [secret])
  check                 npm run check -- --stack NAME --cwd DIR --json, with the arguments after --

Options:
  --cwd DIR             the Pulumi project folder (default: this checkout)
  --stacks A,B          these stacks (default: every stack of the project in the current backend)
  --fleet-file FILE     the stacks listed in FILE (YAML: a list of names, or of {name, workDir})
  --stack-filter REGEX  only the stacks whose name matches REGEX
  --concurrency N       stacks at once (default ${DEFAULT_CONCURRENCY})
  --fail-fast           start no new stack after the first failure (default: every stack runs)
  --json                print the result as JSON on stdout (the progress lines go to stderr)

Exit status: 0 when no stack failed, 1 when one did, 2 for a usage error.
`;

/** Parses `argv` (the arguments after the script name); "help" for --help / -h. */
export function parseFleetArgs(argv: readonly string[], defaultCwd: string): FleetOptions | "help" {
  const cut = argv.indexOf("--");
  const own = cut < 0 ? [...argv] : argv.slice(0, cut);
  const extra = cut < 0 ? [] : argv.slice(cut + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      allowPositionals: true,
      strict: true,
      options: {
        cwd: { type: "string" },
        stacks: { type: "string" },
        "fleet-file": { type: "string" },
        "stack-filter": { type: "string" },
        concurrency: { type: "string" },
        "fail-fast": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    // node's messages name the option ("Unknown option '--foo'. To specify a positional ..."); the hint on
    // quoting that follows is left out.
    throw new UsageError((e as Error).message.split(/\.\s+To specify|\n/)[0].trim());
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";

  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError(`no command given (use ${COMMANDS.join(", ")})`);
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new UsageError(`unknown command '${command}' (use ${COMMANDS.join(", ")})`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}' after the command ${command}`);
  if (extra.length > 0 && command !== "check")
    throw new UsageError(`arguments after -- (${extra.join(" ")}) are for check only, not ${command}`);

  const concurrency = parseConcurrency(values.concurrency);
  if (values.stacks !== undefined && values["fleet-file"] !== undefined)
    throw new UsageError("--stacks and --fleet-file both name the stacks: give one of them");
  let stacks: string[] | undefined;
  if (values.stacks !== undefined) {
    stacks = values.stacks
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
    if (stacks.length === 0) throw new UsageError(`--stacks '${values.stacks}' names no stack`);
  }
  let stackFilter: RegExp | undefined;
  if (values["stack-filter"] !== undefined) {
    try {
      stackFilter = new RegExp(values["stack-filter"]);
    } catch (e) {
      throw new UsageError(
        `--stack-filter '${values["stack-filter"]}' is not a regular expression: ${(e as Error).message}`,
      );
    }
  }
  if (values.cwd === "") throw new UsageError("--cwd '' names no folder");
  return {
    command: command as Command,
    cwd: values.cwd ?? defaultCwd,
    ...(stacks ? { stacks } : {}),
    ...(values["fleet-file"] !== undefined ? { fleetFile: values["fleet-file"] } : {}),
    ...(stackFilter ? { stackFilter } : {}),
    concurrency,
    failFast: values["fail-fast"],
    json: values.json,
    extra,
  };
}

function parseConcurrency(text: string | undefined): number {
  if (text === undefined) return DEFAULT_CONCURRENCY;
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--concurrency '${text}' is not a whole number of at least 1`);
  return n;
}
