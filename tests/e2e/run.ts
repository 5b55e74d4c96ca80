// `npm run test:e2e`: builds (or reuses) the Debian 12 rootfs, boots it with systemd in a network namespace of
// its own, deploys the relay's plan over SSH, runs the online suite against it, prints a timing report, and always
// removes what it started (container, overlay, veth, namespace, HTTP server), also on errors and Ctrl-C.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RelayConfig } from "../../components/config";
import { planRelay, type Plan } from "../../components/plan";
import { tlsPaths } from "../../components/plan/facts";
import { testbedConfig, TEST_DOMAIN } from "./config";
import { bootContainer, type Container } from "./container";
import { applyPlan } from "./deploy";
import { irohArchive, startHostSide } from "./hostside";
import { createNetns } from "./netns";
import { run } from "./proc";
import { abandonBuilds, ensureRootfs, rootfsKey, rootfsSpec } from "./rootfs";
import { runFromCommandLine, startTestbedRun } from "./harness";
import { Ssh } from "./ssh";
import { runSuite } from "./suite/runner";
import { SUITE } from "./suite";
import type { Deployed, SuiteContext } from "./suite/types";

export interface TestbedOptions {
  /** Keep the server running after the suite until Ctrl-C, for looking around (`npm run test:e2e -- --hold`). */
  readonly hold?: boolean;
  /** Run only the suite groups whose name contains this text (`-- --only mail`), for working on one area. */
  readonly only?: string;
  /** How a config becomes a plan; the real run uses planRelay with the project's assets. */
  readonly makePlan?: (config: RelayConfig) => Plan;
}

const log = (s: string) => process.stdout.write(`[e2e] ${s}\n`);

function defaultPlanner(): (config: RelayConfig) => Plan {
  // Loaded on first use: loading bundles the daemons, which a broken checkout should report inside the run.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadAssets } = require("../../components/assets") as typeof import("../../components/assets");
  const assets = loadAssets();
  return (config) => planRelay(config, assets);
}

export async function main(opts: TestbedOptions = {}): Promise<number> {
  if (process.getuid?.() !== 0)
    throw new Error("the e2e testbed needs root (network namespaces, nspawn, mounts)");
  const testbed = startTestbedRun("cme2e-", log);
  const { runDir, cleanup, time, timed, keep } = testbed;
  try {
    const makePlan = opts.makePlan ?? defaultPlanner();
    const netns = await createNetns();
    cleanup.add("network namespace", () => netns.remove());
    log(`namespace ${netns.name}: host ${netns.hostAddr}, server ${netns.containerAddr}`);
    netns.setHosts(["", "www.", "mta-sts."].map((sub) => [netns.containerAddr, sub + TEST_DOMAIN] as const));
    const hostSide = await startHostSide(netns.hostAddr);
    cleanup.add("host-side HTTP server", () => hostSide.close());

    // The archive member's name comes from the plan; its hash must then go into the config.
    const probe = makePlan(testbedConfig({ baseUrl: hostSide.baseUrl, irohSha256: "0".repeat(64) }));
    const download = probe.units.find((u) => u.kind === "download");
    const iroh = await irohArchive(runDir, download?.kind === "download" ? download.member : "./iroh-relay");
    hostSide.serveArchive(iroh.path);
    log(
      iroh.real
        ? `iroh-relay archive: ${iroh.path}`
        : "iroh-relay: no build from tools/iroh/build.sh; serving a stand-in script",
    );
    const host = { baseUrl: hostSide.baseUrl, irohSha256: iroh.binarySha256 };
    const plan = (overrides = {}) => {
      const config = testbedConfig(host, overrides);
      return { config, plan: makePlan(config) };
    };
    const first = plan();
    log(`plan: ${first.plan.units.length} units, ${first.plan.steps.length} steps`);

    const spec = rootfsSpec([first.plan]);
    cleanup.add("unfinished rootfs build", abandonBuilds);
    const t0 = Date.now();
    const rootfs = await ensureRootfs(spec, (s) => log(`rootfs: ${s}`));
    const label = {
      all: "rootfs build (cold)",
      packages: "rootfs build (base cached)",
      no: "rootfs (cached)",
    }[rootfs.built];
    time(label, (Date.now() - t0) / 1000);
    log(`rootfs ${rootfsKey(spec)}: ${label} (${spec.packages.length} packages)`);

    const keyPath = join(runDir, "id_ed25519");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "chatmail-e2e", "-f", keyPath]);
    const container: Container = await timed("boot", () =>
      bootContainer({
        rootfs: rootfs.dir,
        runDir,
        netns,
        authorizedKey: readFileSync(`${keyPath}.pub`, "utf8"),
        log,
      }),
    );
    cleanup.add("container", () => container.stop());
    log(`booted (${container.state})`);
    const ssh = new Ssh({ addr: netns.containerAddr, keyPath, controlDir: runDir });
    cleanup.add("ssh connection", () => ssh.close());
    cleanup.add("journal copy", async () => {
      if (!testbed.kept) return;
      const journal = await container
        .enter(["journalctl", "--no-pager", "-o", "short-precise"])
        .catch((e: Error) => e.message);
      writeFileSync(join(runDir, "journal.txt"), journal + "\n");
    });

    const statePath = join(runDir, "deploy-state.json");
    const deploy = async (overrides = {}): Promise<Deployed> => {
      const { config, plan: p } = plan(overrides);
      return { config, plan: p, result: await applyPlan(p, ssh, statePath, () => {}) };
    };
    log("deploying");
    const firstResult = await timed("first deploy", () => applyPlan(first.plan, ssh, statePath, log));
    log(`first deploy: ${firstResult.ran.length} steps ran in ${firstResult.seconds.toFixed(1)} s`);

    let certPem: string | undefined;
    const ctx: SuiteContext = {
      addr: netns.containerAddr,
      domain: TEST_DOMAIN,
      first: { ...first, result: firstResult },
      ssh,
      container,
      hostSide,
      irohReal: iroh.real,
      netns,
      deploy,
      planFor: (overrides) => plan(overrides).plan,
      async caCert() {
        certPem ??= await ssh.out(`cat ${tlsPaths(first.config).cert}`);
        return certPem;
      },
      time,
    };
    const outcome = await timed("suite", () =>
      runSuite(opts.only ? SUITE.filter(([group]) => group.includes(opts.only!)) : SUITE, ctx, log),
    );
    if (outcome.failed > 0) keep();
    if (opts.hold) {
      log(
        `holding; log in with: ssh -i ${keyPath} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@${netns.containerAddr}`,
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

if (require.main === module) runFromCommandLine(main);
