// `npm run test:e2e`: builds (or reuses) the Debian 12 rootfs (Debian 13 with `-- --os debian-13`), boots it with systemd in a network namespace of
// its own, deploys the relay with the real `pulumi preview` and `pulumi up` (tests/e2e/engine.ts), runs the online
// suite against it, prints a timing report, and always removes what it started (container, overlay, veth,
// namespace, HTTP server), also on errors and Ctrl-C.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tlsPaths } from "../../core/plan/facts";
import { TEST_DOMAIN, type RawOption } from "./config";
import { Engine } from "./engine";
import { runFromCommandLine, startTestbedRun, type CommandLine } from "./harness";
import { startPrometheus } from "./prometheus";
import { startTestServer } from "./testServer";
import { runSuite } from "./suite/runner";
import { SUITE } from "./suite";
import { metricsHooks } from "./suite/metrics";
import type { Deployed, SuiteContext } from "./suite/types";

/**
 * `--hold` keeps the server running after the suite until Ctrl-C, for looking around; `--only mail` runs only
 * the suite groups whose name contains the text, for working on one area; `--os debian-13` boots Debian 13 and
 * deploys a stack with that serverOs.
 */
export type TestbedOptions = CommandLine;

const log = (s: string) => process.stdout.write(`[e2e] ${s}\n`);

export async function main(opts: TestbedOptions = {}): Promise<number> {
  if (process.getuid?.() !== 0)
    throw new Error("the e2e testbed needs root (network namespaces, nspawn, mounts)");
  // Refused before anything boots: a filter that matches nothing would pass with "0 passed, 0 failed".
  const groups = opts.only ? SUITE.filter(([group]) => group.includes(opts.only!)) : SUITE;
  if (groups.length === 0)
    throw new Error(
      `--only ${JSON.stringify(opts.only)} matches no suite group; use text from one of: ${SUITE.map(([g]) => g).join(", ")}`,
    );
  const testbed = startTestbedRun("cme2e-", log);
  const { runDir, cleanup, time, timed, keep } = testbed;
  try {
    const server = await startTestServer(testbed, log, { serverOs: opts.serverOs });
    const { netns, ssh, container, hostSide, target, plan } = server;
    const first = plan();
    // Scrapes the relay's metrics from before the first deploy to the end of the suite (suite/metrics.ts).
    const prometheus = await startPrometheus(join(runDir, "prometheus"), netns.hostAddr, netns.containerAddr);
    cleanup.add("prometheus", () => prometheus.stop());
    log(`prometheus ${prometheus.url} scraping ${prometheus.target}`);
    const engine = new Engine(runDir, log);
    const stack = await engine.stack("testbed");
    const deploy = async (overrides: Readonly<Record<string, RawOption>> = {}): Promise<Deployed> => {
      await stack.configureRelay(server.options(overrides), target);
      const { config, plan: p } = plan(overrides);
      return { config, plan: p, result: await stack.up(["--skip-preview"]) };
    };
    await stack.configureRelay(server.options(), target);
    const preview = await timed("pulumi preview", () => stack.preview());
    log(
      `pulumi preview: ${preview.output.split("\n").filter((l) => /^\s*\+ /.test(l)).length} resources to create`,
    );
    writeFileSync(join(runDir, "preview.txt"), preview.output);
    log("deploying: pulumi up");
    const firstResult = await timed("first pulumi up", () => stack.up(["--skip-preview"]));
    log(`first pulumi up: ${firstResult.ran.length} steps ran in ${firstResult.seconds.toFixed(1)} s`);

    let certPem: string | undefined;
    const ctx: SuiteContext = {
      addr: netns.containerAddr,
      domain: TEST_DOMAIN,
      first: { ...first, result: firstResult },
      ssh,
      container,
      hostSide,
      irohReal: server.irohReal,
      netns,
      deploy,
      stack,
      target,
      optionsFor: (overrides) => server.options(overrides),
      transcript: () => engine.transcript.join("\n"),
      planFor: (overrides) => plan(overrides).plan,
      async caCert() {
        certPem ??= await ssh.out(`cat ${tlsPaths(first.config).cert}`);
        return certPem;
      },
      time,
      prometheus,
    };
    const outcome = await timed("suite", () => runSuite(groups, ctx, log, metricsHooks(prometheus)));
    writeFileSync(join(runDir, "pulumi-transcript.txt"), ctx.transcript());
    if (outcome.failed > 0) keep();
    if (opts.hold) {
      log(
        `holding; log in with: ssh -i ${target.keyPath} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@${netns.containerAddr}`,
      );
      log("press Ctrl-C to clean up");
      keep();
      await new Promise(() => {});
    }

    return await testbed.finish(outcome);
  } catch (e) {
    return testbed.fail(e);
  }
}

if (require.main === module) runFromCommandLine(main, { takesOs: true });
