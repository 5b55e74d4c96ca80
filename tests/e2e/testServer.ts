// One booted test server for the relay: a network namespace of its own, the host-side HTTP server (iroh-relay
// archive, push notifications), the cached rootfs of the Debian release the stack's serverOs names, the container and an SSH key. The testbed, the
// deploy benchmark and the quick start (`npm run try`) all start their server here; everything started is
// registered with the run's cleanup.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RelayConfig } from "../../core/config";
import { planRelay, type Plan } from "../../core/plan";
import { testbedConfig, testbedOptions, TEST_DOMAIN, type HostSide, type RawOption } from "./config";
import { bootContainer, type Container } from "./container";
import type { TestbedRun } from "./harness";
import { irohArchive, startHostSide, type HostSideServer } from "./hostside";
import { createNetns, type Netns } from "./netns";
import { run } from "./proc";
import { abandonBuilds, ensureRootfs, rootfsKey, rootfsSpec, SUITES } from "./rootfs";
import { Ssh } from "./ssh";

export interface TestServer {
  readonly netns: Netns;
  readonly hostSide: HostSideServer;
  /** Whether the iroh-relay archive is a real build rather than the stand-in script. */
  readonly irohReal: boolean;
  readonly host: HostSide;
  readonly container: Container;
  readonly ssh: Ssh;
  /** How a stack reaches the server. */
  readonly target: { readonly address: string; readonly keyPath: string };
  /** The testbed relay's options and checked config with these overrides, and its plan. */
  options(overrides?: Readonly<Record<string, RawOption>>): Record<string, RawOption>;
  plan(overrides?: Readonly<Record<string, RawOption>>): { config: RelayConfig; plan: Plan };
}

/** The project's assets, loaded on first use: loading bundles the daemons, which a broken checkout reports here. */
export function defaultPlanner(): (config: RelayConfig) => Plan {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { loadAssets } = require("../../components/assets") as typeof import("../../components/assets");
  const assets = loadAssets();
  return (config) => planRelay(config, assets);
}

/** The cached root filesystem of serverOs with every package the plans install, built first if missing; timed. */
export async function prepareRootfs(
  testbed: TestbedRun,
  serverOs: RelayConfig["serverOs"],
  plans: readonly Plan[],
  log: (s: string) => void,
): Promise<{ dir: string }> {
  const spec = rootfsSpec(SUITES[serverOs], plans);
  testbed.cleanup.add("unfinished rootfs build", abandonBuilds);
  const t0 = Date.now();
  const rootfs = await ensureRootfs(spec, (s) => log(`rootfs: ${s}`));
  const label = {
    all: "rootfs build (cold)",
    packages: "rootfs build (base cached)",
    no: "rootfs (cached)",
  }[rootfs.built];
  testbed.time(label, (Date.now() - t0) / 1000);
  log(`rootfs ${rootfsKey(spec)}: ${label} (${spec.suite}, ${spec.packages.length} packages)`);
  return rootfs;
}

export interface TestServerOptions {
  /** The server's OS and so the stack's serverOs: every deploy to this server sets it. Default debian-12. */
  readonly serverOs?: RelayConfig["serverOs"];
  readonly makePlan?: (config: RelayConfig) => Plan;
}

export async function startTestServer(
  testbed: TestbedRun,
  log: (s: string) => void,
  { serverOs = "debian-12", makePlan = defaultPlanner() }: TestServerOptions = {},
): Promise<TestServer> {
  const { runDir, cleanup, timed } = testbed;
  const netns = await createNetns();
  cleanup.add("network namespace", () => netns.remove());
  log(`namespace ${netns.name}: host ${netns.hostAddr}, server ${netns.containerAddr}`);
  netns.setHosts(["", "www.", "mta-sts."].map((sub) => [netns.containerAddr, sub + TEST_DOMAIN] as const));
  const hostSide = await startHostSide(netns.hostAddr);
  cleanup.add("host-side HTTP server", () => hostSide.close());

  // The archive member's name comes from the plan; its hash must then go into the config.
  const os = { serverOs };
  const probe = makePlan(testbedConfig({ baseUrl: hostSide.baseUrl, irohSha256: "0".repeat(64) }, os));
  const download = probe.units.find((u) => u.kind === "download");
  const iroh = await irohArchive(runDir, download?.kind === "download" ? download.member : "./iroh-relay");
  hostSide.serveArchive(iroh.path);
  log(
    iroh.real
      ? `iroh-relay archive: ${iroh.path}`
      : "iroh-relay: no build from tests/tools/iroh/build.sh; serving a stand-in script",
  );
  const host = {
    baseUrl: hostSide.baseUrl,
    irohSha256: iroh.binarySha256,
    relayAddress: netns.containerAddr,
  };
  const plan = (overrides: Readonly<Record<string, RawOption>> = {}) => {
    const config = testbedConfig(host, { ...os, ...overrides });
    return { config, plan: makePlan(config) };
  };
  const first = plan().plan;
  log(`plan: ${first.units.length} units, ${first.steps.length} steps`);

  const rootfs = await prepareRootfs(testbed, serverOs, [first], log);

  // A folder per server, so that one run may boot several (the deploy benchmark does).
  const dir = join(runDir, netns.name);
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, "id_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "chatmail-e2e", "-f", keyPath]);
  const container: Container = await timed("boot", () =>
    bootContainer({
      rootfs: rootfs.dir,
      runDir: dir,
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
    writeFileSync(join(dir, "journal.txt"), journal + "\n");
  });
  return {
    netns,
    hostSide,
    irohReal: iroh.real,
    host,
    container,
    ssh,
    target: { address: netns.containerAddr, keyPath },
    options: (overrides = {}) => testbedOptions(host, { ...os, ...overrides }),
    plan,
  };
}
