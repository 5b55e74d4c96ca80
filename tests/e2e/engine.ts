// Drives the real Pulumi engine for the testbeds: the CLI and language host built by tests/tools/pulumi/build.sh,
// our stand-in command plugin, a local file backend and a passphrase, one stack per testbed relay. The program is
// the project's own index.ts, run from a project folder of its own so that the stack files never land in the
// checkout; its files are links into the checkout, so what runs is exactly what an operator runs.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { OPTIONS, type OptionName } from "../../core/config";
import { PROJECT_NAME } from "../../core/config/pulumiYaml";
import { run, type ProcResult } from "./proc";

const REPO = join(__dirname, "../..");
/** The files of the checkout the program needs beside Pulumi.yaml; everything else is reached through them. */
const LINKED = ["index.ts", "components", "package.json", "tsconfig.json", "node_modules"];
const TOOLS = ["pulumi", "pulumi-language-nodejs", "pulumi-resource-command"];

export type ConfigValue = string | number | boolean | string[];

/** What one `pulumi up` did, read from the engine's event log. */
export interface UpResult {
  /** Plan step ids whose command ran (created, updated or replaced), in the engine's order. */
  readonly ran: string[];
  /** Every resource operation other than "same", as `op name`. */
  readonly changes: string[];
  readonly seconds: number;
  readonly output: string;
}

/** The bin directory of the built tools, or a clear error saying how to build them. */
export function toolsBinDir(): string {
  const script = join(REPO, "tests/tools/pulumi/build.sh");
  const dir = execFileSync(script, ["--print-bin-dir"], { encoding: "utf8" }).trim();
  const missing = TOOLS.filter((t) => !existsSync(join(dir, t)));
  if (missing.length > 0) throw new Error(`${missing.join(", ")} missing in ${dir}: run ${script} first`);
  return dir;
}

/** A project folder with a file backend under `dir`; `stack()` makes one stack per relay. */
export class Engine {
  readonly projectDir: string;
  readonly stateDir: string;
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Every line the CLI printed, for the secrets check. */
  readonly transcript: string[] = [];

  /**
   * `cli`: "built" (default) runs the tools of tests/tools/pulumi/build.sh with plugin downloads off, as the
   * tests must; "installed" runs the `pulumi` on PATH as it is, which downloads the real command plugin.
   */
  constructor(
    dir: string,
    private readonly log: (s: string) => void,
    cli: "built" | "installed" = "built",
  ) {
    this.dir = dir;
    this.projectDir = join(dir, "project");
    this.stateDir = join(dir, "state");
    mkdirSync(this.projectDir, { recursive: true });
    mkdirSync(this.stateDir, { recursive: true });
    copyFileSync(join(REPO, "Pulumi.yaml"), join(this.projectDir, "Pulumi.yaml"));
    for (const name of LINKED) {
      if (!existsSync(join(this.projectDir, name)))
        symlinkSync(join(REPO, name), join(this.projectDir, name));
    }

    // In a file, so that a kept run's stack can be inspected with the same passphrase.
    const passphraseFile = join(dir, "passphrase");
    if (!existsSync(passphraseFile))
      writeFileSync(passphraseFile, randomBytes(16).toString("hex"), { mode: 0o600 });
    this.env = {
      ...process.env,
      ...(cli === "built"
        ? {
            PATH: `${toolsBinDir()}:${process.env.PATH ?? "/usr/bin:/bin"}`,
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
          }
        : {}),
      ...(cli === "built" ? { PULUMI_HOME: join(dir, "pulumi-home") } : {}),
      PULUMI_BACKEND_URL: `file://${this.stateDir}`,
      PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      NO_COLOR: "1",
      // Enables `--event-log` (the engine's events as JSON lines), as the Automation API does.
      PULUMI_DEBUG_COMMANDS: "true",
    };
  }

  async pulumi(
    args: readonly string[],
    opts: { input?: string; allowFail?: boolean } = {},
  ): Promise<ProcResult> {
    const result = await run(
      "pulumi",
      ["--cwd", this.projectDir, "--non-interactive", "--color", "never", ...args],
      {
        env: this.env,
        input: opts.input,
        allowFail: true,
        timeoutMs: 20 * 60_000,
      },
    );
    this.transcript.push(`$ pulumi ${args.join(" ")}`, result.stdout, result.stderr);
    if (result.code !== 0 && !opts.allowFail) {
      const lines = (result.stdout + result.stderr).trimEnd().split("\n");
      const tailStart = Math.max(0, lines.length - 60);
      // The engine's errors are in the Diagnostics section, which a long Outputs section (alertRules) can push
      // out of the tail: it is kept in front of the tail.
      const start = lines.findIndex((l) => /^Diagnostics:/.test(l));
      const end = lines.findIndex((l, i) => i > start && /^\S/.test(l));
      const diagnostics =
        start >= 0 && start < tailStart
          ? lines.slice(start, Math.min(end < 0 ? tailStart : end, tailStart))
          : [];
      const shown = [...diagnostics, ...(diagnostics.length > 0 ? ["..."] : []), ...lines.slice(tailStart)];
      throw new Error(`pulumi ${args.slice(0, 2).join(" ")}: exit ${result.code}\n${shown.join("\n")}`);
    }
    return result;
  }

  async stack(name: string): Promise<Stack> {
    await this.pulumi(["stack", "init", name, "--secrets-provider", "passphrase"]);
    this.log(`pulumi stack ${name}: file backend ${this.stateDir}`);
    return new Stack(this, name);
  }
}

/** One stack: its config file in the project folder, and the engine commands an operator runs on it. */
export class Stack {
  private secrets = new Map<string, string>();

  constructor(
    private readonly engine: Engine,
    readonly name: string,
  ) {}

  /** The file backend's folder (state, backups, history), shared by the engine's stacks. */
  get stateDir(): string {
    return this.engine.stateDir;
  }

  get configFile(): string {
    return join(this.engine.projectDir, `Pulumi.${this.name}.yaml`);
  }

  /**
   * Sets the stack's whole config: `plain` values are written into the stack file as YAML (what
   * `pulumi config set` would write), `secrets` go through `pulumi config set --secret` so they are encrypted.
   * Options in neither are removed.
   */
  async configure(
    plain: Readonly<Record<string, ConfigValue>>,
    secrets: Readonly<Record<string, ConfigValue>>,
  ) {
    const file = existsSync(this.configFile) ? (parse(readFileSync(this.configFile, "utf8")) ?? {}) : {};
    const old = (file.config ?? {}) as Record<string, unknown>;
    const config: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(plain)) config[`${PROJECT_NAME}:${name}`] = value;
    const changed: Array<[string, ConfigValue]> = [];
    for (const [name, value] of Object.entries(secrets)) {
      const key = `${PROJECT_NAME}:${name}`;
      const text = JSON.stringify(value);
      if (this.secrets.get(name) === text && old[key] !== undefined) config[key] = old[key];
      else changed.push([name, value]);
    }
    for (const name of this.secrets.keys()) if (!(name in secrets)) this.secrets.delete(name);
    writeFileSync(this.configFile, stringify({ ...file, config }));
    for (const [name, value] of changed) {
      // Values travel on stdin, never on the command line; a list is set item by item under --path.
      if (Array.isArray(value)) {
        for (const [i, item] of value.entries())
          await this.engine.pulumi(
            ["config", "set", "--stack", this.name, "--secret", "--path", `${name}[${i}]`],
            {
              input: item,
            },
          );
      } else {
        await this.engine.pulumi(["config", "set", "--stack", this.name, "--secret", name], {
          input: String(value),
        });
      }
      this.secrets.set(name, JSON.stringify(value));
    }
  }

  /**
   * Configures the stack for a relay on an existing server without a DNS provider, as the testbeds deploy it:
   * `options` are the relay's options (secret ones are encrypted), the SSH key is a secret.
   */
  async configureRelay(
    options: Readonly<Record<string, ConfigValue>>,
    host: { address: string; keyPath: string },
  ) {
    const plain: Record<string, ConfigValue> = {
      hostProvider: "existing",
      hostAddress: host.address,
      dnsProvider: "none",
    };
    const secrets: Record<string, ConfigValue> = { sshPrivateKey: readFileSync(host.keyPath, "utf8") };
    for (const [name, value] of Object.entries(options)) {
      if (!(name in OPTIONS)) throw new Error(`configureRelay: ${name} is not an option`);
      (OPTIONS[name as OptionName].secret ? secrets : plain)[name] = value;
    }
    await this.configure(plain, secrets);
  }

  async preview(flags: readonly string[] = []): Promise<{ output: string; seconds: number }> {
    const t = Date.now();
    const r = await this.engine.pulumi(["preview", "--stack", this.name, "--diff", ...flags]);
    return { output: r.stdout + r.stderr, seconds: (Date.now() - t) / 1000 };
  }

  /** `pulumi up --yes` (with `flags`), and which plan steps ran according to the engine's event log. */
  async up(flags: readonly string[] = []): Promise<UpResult> {
    // Outside the backend, and deleted once read: the SDK's debug diagnostics in it print secret values.
    const events = join(this.engine.dir, `events-${this.name}.jsonl`);
    const t = Date.now();
    const r = await this.engine.pulumi([
      "up",
      "--stack",
      this.name,
      "--yes",
      "--event-log",
      events,
      ...flags,
    ]);
    const seconds = (Date.now() - t) / 1000;
    const { ran, changes } = readEvents(events);
    rmSync(events, { force: true });
    return { ran, changes, seconds, output: r.stdout + r.stderr };
  }

  async destroy(): Promise<string> {
    const r = await this.engine.pulumi(["destroy", "--stack", this.name, "--yes"]);
    return r.stdout + r.stderr;
  }

  async outputs(showSecrets = false): Promise<Record<string, unknown>> {
    const r = await this.engine.pulumi([
      "stack",
      "output",
      "--stack",
      this.name,
      "--json",
      ...(showSecrets ? ["--show-secrets"] : []),
    ]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  async exportState(): Promise<string> {
    return (await this.engine.pulumi(["stack", "export", "--stack", this.name])).stdout;
  }
}

/** Name of the plan step behind a resource name (`relay-config-<step id>`), if it is one. */
const STEP_PREFIX = "relay-config-";
const RUNS = new Set(["create", "update", "replace", "create-replacement"]);

interface EngineEvent {
  resOutputsEvent?: { metadata: { op: string; urn: string; type: string } };
}

function readEvents(path: string): { ran: string[]; changes: string[] } {
  const ran: string[] = [];
  const changes: string[] = [];
  if (!existsSync(path)) return { ran, changes };
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const meta = (JSON.parse(line) as EngineEvent).resOutputsEvent?.metadata;
    if (!meta || meta.op === "same") continue;
    const name = meta.urn.slice(meta.urn.lastIndexOf("::") + 2);
    changes.push(`${meta.op} ${name}`);
    if (meta.type === "command:remote:Command" && RUNS.has(meta.op) && name.startsWith(STEP_PREFIX)) {
      const id = name.slice(STEP_PREFIX.length);
      if (!ran.includes(id)) ran.push(id);
    }
  }
  return { ran, changes };
}
