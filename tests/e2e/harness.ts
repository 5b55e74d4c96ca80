// What every testbed run needs around its work: a run directory (kept for inspection when something failed),
// undo actions that run exactly once whatever ends the run (also Ctrl-C), and timings for the closing report.
import { mkdtempSync, rmSync } from "node:fs";
import { OPTIONS, type RelayConfig } from "../../core/config";

/** Undo actions, run last-in first-out exactly once, whatever ends the run. */
export class Cleanup {
  private readonly actions: Array<[string, () => Promise<void>]> = [];
  private done?: Promise<void>;
  constructor(private readonly log: (s: string) => void) {}
  add(what: string, action: () => Promise<void>) {
    this.actions.push([what, action]);
  }
  run(): Promise<void> {
    this.done ??= (async () => {
      for (const [what, action] of this.actions.reverse()) {
        try {
          await action();
        } catch (e) {
          this.log(`cleanup: ${what} failed: ${(e as Error).message}`);
        }
      }
    })();
    return this.done;
  }
}

export interface TestbedRun {
  /** A short path (SSH control sockets live here), removed at the end unless `keep()` was called. */
  readonly runDir: string;
  readonly cleanup: Cleanup;
  readonly timings: Array<[string, number]>;
  time(label: string, seconds: number): void;
  timed<T>(label: string, f: () => Promise<T>): Promise<T>;
  /** Keeps the run directory (logs, journal, deploy state) after the run, for a failed run. */
  keep(): void;
  readonly kept: boolean;
  /** Ends a finished run: timings, failures, cleanup, total time and the closing `N passed, N failed` line. */
  finish(outcome: { passed: number; failed: number; failures: readonly string[] }): Promise<number>;
  /** Ends a run that threw: keeps the logs, cleans up, reports the timings so far; returns the exit code. */
  fail(error: unknown): Promise<number>;
}

/** Starts a run: the run directory under /tmp with `prefix`, cleanup on SIGINT/SIGTERM. */
export function startTestbedRun(prefix: string, log: (s: string) => void): TestbedRun {
  const cleanup = new Cleanup(log);
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: cleaning up`);
    void cleanup.run().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const started = Date.now();
  const runDir = mkdtempSync(`/tmp/${prefix}`);
  const timings: Array<[string, number]> = [];
  let kept = false;
  cleanup.add("run directory", async () => {
    if (kept) log(`logs kept in ${runDir}`);
    else rmSync(runDir, { recursive: true, force: true });
  });
  const time = (label: string, seconds: number) => void timings.push([label, seconds]);
  return {
    runDir,
    cleanup,
    timings,
    time,
    async timed<T>(label: string, f: () => Promise<T>): Promise<T> {
      const t = Date.now();
      const value = await f();
      time(label, (Date.now() - t) / 1000);
      return value;
    },
    keep: () => void (kept = true),
    get kept() {
      return kept;
    },
    async finish(outcome): Promise<number> {
      const line = (label: string, seconds: number) =>
        log(`  ${label.padEnd(30)} ${seconds.toFixed(1).padStart(7)} s`);
      log("timings:");
      for (const [label, seconds] of timings) line(label, seconds);
      if (outcome.failures.length > 0) {
        log("failures:");
        for (const f of outcome.failures) log(`  ${f}`);
      }
      await cleanup.run();
      line("total (incl. cleanup)", (Date.now() - started) / 1000);
      log(`${outcome.passed} passed, ${outcome.failed} failed`);
      return outcome.failed > 0 ? 1 : 0;
    },
    async fail(error: unknown): Promise<number> {
      kept = true;
      log(`error: ${(error as Error).stack ?? error}`);
      await cleanup.run();
      if (timings.length > 0)
        log(`timings so far: ${timings.map(([l, s]) => `${l} ${s.toFixed(1)} s`).join(", ")}`);
      log("0 passed, 1 failed");
      return 1;
    },
  };
}

/** What a testbed's command line asks for. */
export interface CommandLine {
  readonly only?: string;
  readonly hold?: boolean;
  /** The server's OS (`--os debian-13`); unset: debian-12. */
  readonly serverOs?: RelayConfig["serverOs"];
}

/**
 * Parses `--only <group text>`, `--hold` and `--os <serverOs>`; an unknown OS is an error, and so is `--os` for a
 * testbed that boots only Debian 12 (federation, continuity).
 */
export function parseCommandLine(argv: readonly string[], takesOs: boolean): CommandLine {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const os = value("--os");
  if (os !== undefined && !takesOs) throw new Error("--os: this testbed boots Debian 12 only");
  return {
    only: value("--only"),
    hold: argv.includes("--hold"),
    serverOs: os === undefined ? undefined : OPTIONS.serverOs.parse(os, "--os"),
  };
}

/** Runs a testbed's main with its command line; exits with the run's code. */
export function runFromCommandLine(
  main: (opts: CommandLine) => Promise<number>,
  { takesOs = false }: { takesOs?: boolean } = {},
): void {
  Promise.resolve()
    .then(() => main(parseCommandLine(process.argv.slice(2), takesOs)))
    .then(
      (code) => process.exit(code),
      (e: Error) => {
        process.stderr.write(`${e.message}\n`);
        process.exit(1);
      },
    );
}
