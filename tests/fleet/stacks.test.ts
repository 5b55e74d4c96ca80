// Which stacks a fleet command runs on: --stacks, a fleet file, or the backend's list; --stack-filter narrows.
import { describe, expect, it } from "vitest";
import { UsageError } from "../../tools/fleet/args";
import { filterStacks, parseFleetFile, resolveStacks } from "../../tools/fleet/stacks";

describe("parseFleetFile", () => {
  it("reads names and {name, workDir}; a relative workDir is relative to the file, none means --cwd", () => {
    const text = ["- relay-a", "- name: relay-b", "  workDir: ../other", "- name: relay-c"].join("\n");
    expect(parseFleetFile(text, "/ops/fleets/fleet.yaml", "/repo")).toEqual([
      { name: "relay-a", workDir: "/repo" },
      { name: "relay-b", workDir: "/ops/other" },
      { name: "relay-c", workDir: "/repo" },
    ]);
    expect(parseFleetFile("- name: x\n  workDir: /abs\n", "/ops/f.yaml", "/repo")).toEqual([
      { name: "x", workDir: "/abs" },
    ]);
  });

  it.each([
    ["stacks: [a]", /f\.yaml: expected a YAML list of stack names/],
    ["", /f\.yaml: expected a YAML list .*got nothing/],
    ["- [a, b]", /f\.yaml: item 1: expected a stack name or \{name, workDir\}, got a list/],
    ["- a\n- workDir: x", /item 2: 'name' must be a stack name/],
    ["- name: a\n  dir: x", /item 1: unknown key 'dir'/],
    ["- name: a\n  workDir: 3", /item 1: 'workDir' must be a folder/],
    ["- a: [", /f\.yaml: not YAML/],
  ])("refuses %j, naming the file and the item", (text, message) => {
    expect(() => parseFleetFile(text, "f.yaml", "/repo")).toThrow(UsageError);
    expect(() => parseFleetFile(text, "f.yaml", "/repo")).toThrow(message);
  });
});

describe("filterStacks", () => {
  const stacks = ["relay-a", "relay-b", "staging-a"].map((name) => ({ name, workDir: "/repo" }));
  it("keeps the stacks whose name matches, all without a filter", () => {
    expect(filterStacks(stacks, /^relay-/).map((s) => s.name)).toEqual(["relay-a", "relay-b"]);
    expect(filterStacks(stacks, /-a$/).map((s) => s.name)).toEqual(["relay-a", "staging-a"]);
    expect(filterStacks(stacks, undefined)).toEqual(stacks);
  });
});

describe("resolveStacks", () => {
  const backend = async (dir: string) => (dir === "/repo" ? ["relay-a", "relay-b", "staging"] : []);
  const noFile = () => {
    throw new Error("ENOENT: no such file");
  };

  it("lists the backend's stacks of the project in --cwd by default, filtered", async () => {
    expect(await resolveStacks({ cwd: "/repo" }, backend, noFile)).toEqual([
      { name: "relay-a", workDir: "/repo" },
      { name: "relay-b", workDir: "/repo" },
      { name: "staging", workDir: "/repo" },
    ]);
    const some = await resolveStacks({ cwd: "/repo", stackFilter: /^relay/ }, backend, noFile);
    expect(some.map((s) => s.name)).toEqual(["relay-a", "relay-b"]);
  });

  it("takes --stacks or the fleet file instead of the backend's list", async () => {
    const never = async (): Promise<string[]> => {
      throw new Error("the backend is not asked");
    };
    expect(await resolveStacks({ cwd: "/repo", stacks: ["x", "y"] }, never, noFile)).toEqual([
      { name: "x", workDir: "/repo" },
      { name: "y", workDir: "/repo" },
    ]);
    const file = (path: string) => (path === "/ops/fleet.yaml" ? "- relay-a\n- name: b\n  workDir: w\n" : "");
    expect(await resolveStacks({ cwd: "/repo", fleetFile: "/ops/fleet.yaml" }, never, file)).toEqual([
      { name: "relay-a", workDir: "/repo" },
      { name: "b", workDir: "/ops/w" },
    ]);
  });

  it("says which input has no stack", async () => {
    await expect(resolveStacks({ cwd: "/repo", stackFilter: /^prod/ }, backend, noFile)).rejects.toThrow(
      "no stack matches --stack-filter '^prod' (the backend's stacks of the project in /repo: relay-a, relay-b, staging)",
    );
    await expect(resolveStacks({ cwd: "/empty" }, backend, noFile)).rejects.toThrow(
      "no stacks: the backend's stacks of the project in /empty has none",
    );
    await expect(resolveStacks({ cwd: "/repo", fleetFile: "f.yaml" }, backend, () => "[]")).rejects.toThrow(
      "no stacks: fleet file f.yaml has none",
    );
    await expect(resolveStacks({ cwd: "/repo", fleetFile: "gone.yaml" }, backend, noFile)).rejects.toThrow(
      "--fleet-file gone.yaml: ENOENT",
    );
    await expect(resolveStacks({ cwd: "/repo", stacks: ["a", "a"] }, backend, noFile)).rejects.toThrow(
      "stack a is listed twice",
    );
  });
});
