// Checks the parts of tests/tools/pulumi that run without the Go module proxy: the pins and cache path that
// build.sh derives, its argument check, and the language-host shim that turns Pulumi.yaml runtime options
// into the flags of the old host (docs/pulumi-from-source.md explains why the shim exists).
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const repoRoot = resolve(__dirname, "../..");
const buildScript = join(repoRoot, "tests/tools/pulumi/build.sh");
const shimScript = join(repoRoot, "tests/tools/pulumi/language-nodejs-shim.sh");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "pulumi-tools-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("tests/tools/pulumi/build.sh", () => {
  it("puts the bin directory under the cache root, named after the pinned @pulumi/pulumi version", async () => {
    const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const { stdout } = await run("bash", [buildScript, "--print-bin-dir"], {
      env: { ...process.env, CHATMAIL_TOOLS_CACHE: dir },
    });
    expect(stdout.trim()).toBe(join(dir, `pulumi-${pkg.dependencies["@pulumi/pulumi"]}`, "bin"));
  });

  it("rejects an unknown tool name and lists the allowed ones", async () => {
    const failure = await run("bash", [buildScript, "pulumi-yaml"], {
      env: { ...process.env, CHATMAIL_TOOLS_CACHE: dir },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain("unknown argument 'pulumi-yaml'");
    expect(failure?.stderr).toContain("pulumi, language-nodejs, command");
  });
});

describe("tests/tools/pulumi/language-nodejs-shim.sh", () => {
  // The shim execs pulumi-language-nodejs-host from its own directory; a stand-in prints the arguments.
  async function installShim(): Promise<string> {
    const bin = join(dir, "bin");
    await run("mkdir", ["-p", bin, join(dir, "project")]);
    await copyFile(shimScript, join(bin, "pulumi-language-nodejs"));
    await writeFile(
      join(bin, "pulumi-language-nodejs-host"),
      '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n',
    );
    await chmod(join(bin, "pulumi-language-nodejs"), 0o755);
    await chmod(join(bin, "pulumi-language-nodejs-host"), 0o755);
    await symlink(join(repoRoot, "node_modules"), join(dir, "project", "node_modules"));
    return join(bin, "pulumi-language-nodejs");
  }

  async function argsFor(pulumiYaml: string | undefined): Promise<{ args: string[]; stderr: string }> {
    const shim = await installShim();
    if (pulumiYaml !== undefined) await writeFile(join(dir, "project", "Pulumi.yaml"), pulumiYaml);
    const { stdout, stderr } = await run(shim, ["127.0.0.1:4242"], { cwd: join(dir, "project") });
    return { args: stdout.split("\n").filter((line) => line !== ""), stderr };
  }

  it("passes typescript: false and nodeargs from Pulumi.yaml as flags before the engine address", async () => {
    const { args } = await argsFor(
      'name: p\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n    nodeargs: "--import tsx"\nmain: index.ts\n',
    );
    expect(args).toEqual(["-typescript=false", "-nodeargs=--import tsx", "127.0.0.1:4242"]);
  });

  it("passes tsconfig and typescript: true through", async () => {
    const { args } = await argsFor(
      "name: p\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n    tsconfig: tsconfig.deploy.json\n",
    );
    expect(args).toEqual(["-typescript=true", "-tsconfig=tsconfig.deploy.json", "127.0.0.1:4242"]);
  });

  it("passes no flags for a runtime given as a bare name", async () => {
    const { args } = await argsFor("name: p\nruntime: nodejs\n");
    expect(args).toEqual(["127.0.0.1:4242"]);
  });

  it("passes no flags and says so when Pulumi.yaml cannot be parsed", async () => {
    const { args, stderr } = await argsFor("name: p\nruntime: [unclosed\n");
    expect(args).toEqual(["127.0.0.1:4242"]);
    expect(stderr).toContain("could not read runtime options from Pulumi.yaml");
  });

  it("passes no flags when there is no Pulumi.yaml", async () => {
    const { args } = await argsFor(undefined);
    expect(args).toEqual(["127.0.0.1:4242"]);
  });
});
