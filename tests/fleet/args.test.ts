// The fleet command line: the command, where the stacks come from, the limits, and one clear error per mistake.
import { describe, expect, it } from "vitest";
import { DEFAULT_CONCURRENCY, parseFleetArgs, UsageError, type FleetOptions } from "../../tools/fleet/args";

const parse = (argv: string[]) => parseFleetArgs(argv, "/repo") as FleetOptions;
const error = (argv: string[]) => {
  try {
    parseFleetArgs(argv, "/repo");
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
};

describe("parseFleetArgs", () => {
  it("takes the command and defaults to this checkout, two at a time, every relay running to the end", () => {
    const o = parse(["preview"]);
    expect(o).toMatchObject({
      command: "preview",
      cwd: "/repo",
      concurrency: 2,
      failFast: false,
      json: false,
    });
    expect(DEFAULT_CONCURRENCY).toBe(2);
    expect(o.stacks).toBeUndefined();
    expect(o.fleetFile).toBeUndefined();
    expect(o.stackFilter).toBeUndefined();
    expect(o.extra).toEqual([]);
  });

  it("reads every option", () => {
    const o = parse([
      "up",
      "--cwd",
      "/p",
      "--stacks",
      "relay-a, relay-b,",
      "--stack-filter",
      "^relay-",
      "--concurrency",
      "5",
      "--fail-fast",
      "--json",
    ]);
    expect(o).toMatchObject({ command: "up", cwd: "/p", concurrency: 5, failFast: true, json: true });
    expect(o.stacks).toEqual(["relay-a", "relay-b"]);
    expect(o.stackFilter?.test("relay-x")).toBe(true);
    expect(o.stackFilter?.test("other")).toBe(false);
    expect(parse(["outputs", "--fleet-file", "fleet.yaml"]).fleetFile).toBe("fleet.yaml");
  });

  it("passes what follows -- to check, as it is", () => {
    const o = parse(["check", "--json", "--", "--resolver", "10.0.0.2", "--no-round-trip"]);
    expect(o.json).toBe(true);
    expect(o.extra).toEqual(["--resolver", "10.0.0.2", "--no-round-trip"]);
  });

  it("answers --help", () => {
    expect(parseFleetArgs(["--help"], "/repo")).toBe("help");
    expect(parseFleetArgs(["up", "-h"], "/repo")).toBe("help");
  });

  it.each([
    [[], /no command given \(use preview, up, outputs, check\)/],
    [["deploy"], /unknown command 'deploy'/],
    [["preview", "extra"], /unexpected argument 'extra'/],
    [["preview", "--concurrency", "0"], /--concurrency '0' is not a whole number of at least 1/],
    [["preview", "--concurrency=-1"], /--concurrency '-1'/],
    [["preview", "--concurrency", "-1"], /Option '--concurrency' argument is ambiguous/],
    [["preview", "--concurrency", "1.5"], /--concurrency '1.5'/],
    [["preview", "--concurrency", "two"], /--concurrency 'two'/],
    [["preview", "--concurrency", "3x"], /--concurrency '3x'/],
    [["preview", "--stack-filter", "("], /--stack-filter '\(' is not a regular expression/],
    [["preview", "--stacks", " , "], /--stacks ' , ' names no stack/],
    [["preview", "--stacks", "a", "--fleet-file", "f.yaml"], /--stacks and --fleet-file/],
    [["up", "--", "--resolver", "x"], /after -- \(--resolver x\) are for check only, not up/],
    [["preview", "--bogus"], /^Unknown option '--bogus'$/],
  ])("refuses %j in one line naming the input", (argv, message) => {
    const text = error(argv as string[]);
    expect(text).toMatch(message);
    expect(text).not.toContain("\n");
  });
});
