// `npm run test:e2e:federation`: two relays (chat-a/chat-b.example.org) as booted Debian 12 containers on a test
// bridge, each deployed by the real `pulumi up` of its own stack, with the test's knot serving their zones (the
// zoneFile output of each stack: the project's own record set with the DKIM key and ACME account the program read
// back) and Debian's pebble issuing their certificates through the project's acmetool setup. Then the federation
// suite, a timing report, and cleanup of everything it started.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RelayConfig } from "../../../core/config";
import { planRelay, type Plan } from "../../../core/plan";
import { bootContainer, type Container } from "../container";
import { Engine, type Stack, type UpResult } from "../engine";
import { irohArchive, startHostSide } from "../hostside";
import { run } from "../proc";
import { prepareRootfs } from "../testServer";
import { runFromCommandLine, startTestbedRun } from "../harness";
import { Ssh } from "../ssh";
import { runSuite } from "../suite/runner";
import { reverseZones, startKnot } from "./dns";
import { createFederationNet, ACME_ADDR, DNS_ADDR, HOST_ADDR } from "./net";
import { startPebble } from "./pebble";
import {
  INFRA_ZONE,
  readFacts,
  relayConfig,
  relayOptions,
  relayZone,
  RELAYS,
  type RelaySpec,
} from "./relays";
import { federationSuite, type FedContext, type Relay } from "./suite";

const log = (s: string) => process.stdout.write(`[fed] ${s}\n`);

/** Seconds the first acmetool.service run took on the server (the certificate request of the first deploy). */
async function acmetoolSeconds(ssh: Ssh): Promise<number> {
  const out = await ssh.out("journalctl -u acmetool.service -o short-unix --no-pager");
  const at = (re: RegExp) =>
    Number(
      out
        .split("\n")
        .find((l) => re.test(l))
        ?.split(" ")[0],
    );
  return at(/Finished acmetool\.service|acmetool\.service: Failed/) - at(/Starting acmetool\.service/);
}

export async function main(opts: { only?: string; hold?: boolean } = {}): Promise<number> {
  if (process.getuid?.() !== 0)
    throw new Error("the federation testbed needs root (network namespaces, nspawn, mounts)");
  const testbed = startTestbedRun("cmfed-", log);
  const { runDir, cleanup, time, timed, keep } = testbed;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadAssets } =
      require("../../../components/assets") as typeof import("../../../components/assets");
    const assets = loadAssets();
    const makePlan = (config: RelayConfig): Plan => planRelay(config, assets);

    const net = await createFederationNet([
      ...RELAYS.map((r) => ({ tag: r.tag, addrs: [r.addr] })),
      { tag: "infra", addrs: [DNS_ADDR, ACME_ADDR] },
    ]);
    cleanup.add("test network", () => net.remove());
    const infra = net.members.get("infra")!;
    log(
      `bridge ${HOST_ADDR}/24: DNS ${DNS_ADDR}, ACME ${ACME_ADDR}, ${RELAYS.map((r) => `${r.domain} ${r.addr}`).join(", ")}`,
    );

    const hostSide = await startHostSide(HOST_ADDR);
    cleanup.add("host-side HTTP server", () => hostSide.close());
    const placeholderAcme = { directoryUrl: "https://acme.example.net:14000/dir", trusted: "" };
    const probe = makePlan(
      relayConfig(RELAYS[0], { baseUrl: hostSide.baseUrl, irohSha256: "0".repeat(64) }, placeholderAcme),
    );
    const download = probe.units.find((u) => u.kind === "download");
    const iroh = await irohArchive(runDir, download?.kind === "download" ? download.member : "./iroh-relay");
    hostSide.serveArchive(iroh.path);
    const host = { baseUrl: hostSide.baseUrl, irohSha256: iroh.binarySha256 };

    // The zones before the first deploy: addresses and the records that need no server facts (Pebble resolves
    // the relays' names to validate their challenges). DKIM and the ACME account follow after the deploy.
    const knot = await timed("DNS server start", () =>
      startKnot({
        dir: join(runDir, "knot"),
        netnsName: infra.name,
        addr: DNS_ADDR,
        zones: [
          INFRA_ZONE,
          ...RELAYS.map((r) =>
            relayZone(relayConfig(r, host, placeholderAcme), { ipv4: r.addr, acmeAccountUrl: "" }),
          ),
        ],
      }),
    );
    cleanup.add("knot", () => knot.close());
    const pebble = await timed("ACME server start", () =>
      startPebble({
        dir: join(runDir, "pebble"),
        netnsName: infra.name,
        addr: ACME_ADDR,
        dnsServer: DNS_ADDR,
      }),
    );
    cleanup.add("pebble", () => pebble.close());
    const acme = {
      directoryUrl: pebble.directoryUrl,
      trusted: pebble.listenerCa.trim() + "\n" + pebble.issuingRoot.trim() + "\n",
    };
    const configs = RELAYS.map((r) => relayConfig(r, host, acme));
    const plans = configs.map(makePlan);
    log(`plan: ${plans[0].units.length} units, ${plans[0].steps.length} steps per relay`);

    const rootfs = await prepareRootfs(testbed, configs[0].serverOs, plans, log);

    const keyPath = join(runDir, "id_ed25519");
    await run("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      "chatmail-e2e-federation",
      "-f",
      keyPath,
    ]);
    const authorizedKey = readFileSync(`${keyPath}.pub`, "utf8");
    const boot = async (spec: RelaySpec): Promise<Container> => {
      const relayDir = join(runDir, spec.tag);
      const c = await bootContainer({
        rootfs: rootfs.dir,
        runDir: relayDir,
        netns: net.members.get(spec.tag)!,
        authorizedKey,
        log,
      });
      cleanup.add(`container ${spec.domain}`, () => c.stop());
      cleanup.add(`journal copy ${spec.domain}`, async () => {
        if (!testbed.kept) return;
        const journal = await c
          .enter(["journalctl", "--no-pager", "-o", "short-precise"])
          .catch((e: Error) => e.message);
        writeFileSync(join(relayDir, "journal.txt"), journal + "\n");
      });
      return c;
    };
    const containers = await timed("boot (both, parallel)", async () => {
      const settled = await Promise.allSettled(RELAYS.map(boot));
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) throw failed.reason;
      return settled.map((s) => (s as PromiseFulfilledResult<Container>).value);
    });
    const sshs = RELAYS.map((r) => new Ssh({ addr: r.addr, keyPath, controlDir: runDir }));
    for (const s of sshs) cleanup.add("ssh connection", () => s.close());

    // The cached rootfs has the relay's packages installed already, so its boot started Debian's default nginx
    // on port 80. On a fresh server the packages step installs nginx without starting it, and acmetool answers
    // the first challenge itself; stopping nginx gives the deploy that same starting point.
    // Units the container's cgroup flake failed at boot (postfix@- always, others now and then; the boot log names
    // them) are not the deploy's doing: their failed state is cleared, so that `npm run check` judges what the
    // deploy leaves.
    await Promise.all(sshs.map((s) => s.out("systemctl stop nginx.service; systemctl reset-failed")));
    const engine = new Engine(runDir, log);
    const stacks: Stack[] = [];
    for (const r of RELAYS) {
      const stack = await engine.stack(`relay-${r.tag}`);
      await stack.configureRelay(relayOptions(r, host, acme), { address: r.addr, keyPath });
      stacks.push(stack);
    }
    await timed("pulumi preview (both)", () => Promise.all(stacks.map((s) => s.preview())));
    log("deploying both relays: pulumi up, one stack each");
    const results: UpResult[] = await timed("first pulumi up (both, parallel)", () =>
      Promise.all(stacks.map((s) => s.up(["--skip-preview"]))),
    );
    // In these containers a service start now and then fails with "Failed to attach to cgroup … status=219/CGROUP"
    // (postfix@- even at every boot); systemd restarts it 30 s later. The suite starts once Postfix runs, and
    // says when it had to wait.
    await Promise.all(
      sshs.map(async (s, i) => {
        const waited = await s.out(
          "for i in $(seq 90); do systemctl is-active --quiet postfix@-.service && { echo $i; exit 0; }; sleep 1; done; echo never",
        );
        if (waited !== "1")
          log(`${RELAYS[i].domain}: postfix@-.service active after ${waited} s (cgroup flake)`);
      }),
    );
    for (const [i, r] of RELAYS.entries()) {
      log(`${r.domain}: ${results[i].ran.length} steps in ${results[i].seconds.toFixed(1)} s`);
      time(`ACME issuance ${r.tag}`, await acmetoolSeconds(sshs[i]));
    }

    // The records the program publishes once the servers exist (with the DKIM key and the ACME account it read
    // back): each stack's zoneFile output goes to the test's name server as it is.
    const outputs = await Promise.all(stacks.map((s) => s.outputs()));
    const zones = outputs.map((o, i) => ({ origin: configs[i].mailDomain, body: String(o.zoneFile) }));
    // Reverse DNS as a hosting provider publishes it: a PTR for each address the stacks export.
    const addresses = outputs.map((o, i) => ({
      domain: configs[i].mailDomain,
      addrs: [o.ipv4, o.ipv6].filter((x): x is string => typeof x === "string" && x !== ""),
    }));
    const servedZones = [INFRA_ZONE, ...zones, ...reverseZones(addresses)];
    await timed("DNS reload with the stacks' zone files", () => knot.load(servedZones));
    const facts = await Promise.all(RELAYS.map((r, i) => readFacts(r, sshs[i])));

    const relays: Relay[] = RELAYS.map((r, i) => ({
      spec: r,
      config: configs[i],
      plan: plans[i],
      facts: facts[i],
      netns: net.members.get(r.tag)!,
      ssh: sshs[i],
      container: containers[i],
      ctx: {
        addr: r.addr,
        domain: r.domain,
        first: { config: configs[i], plan: plans[i], result: results[i] },
        ssh: sshs[i],
        container: containers[i],
        hostSide,
        netns: net.members.get(r.tag)!,
        planFor: () => plans[i],
        deploy: () => Promise.reject(new Error("the federation suite does not redeploy")),
        stack: stacks[i],
        target: { address: r.addr, keyPath },
        optionsFor: () => relayOptions(r, host, acme),
        transcript: () => engine.transcript.join("\n"),
        caCert: async () => pebble.issuingRoot,
        time,
      },
    }));
    const fed: FedContext = {
      relays,
      pebbleRoot: pebble.issuingRoot,
      trusted: acme.trusted,
      time,
      checkEnv: {
        knot,
        zones: servedZones,
        addresses,
        engineEnv: engine.env,
        projectDir: engine.projectDir,
        runDir,
      },
    };
    const groups = federationSuite(fed);
    const suite = opts.only ? groups.filter(([g]) => g.includes(opts.only!)) : groups;
    // The tests hold both relays (fed); the runner's context is relay A's, whose plan the `needs` lists check.
    const outcome = await timed("suite", () => runSuite(suite, relays[0].ctx, log));
    writeFileSync(join(runDir, "pulumi-transcript.txt"), engine.transcript.join("\n"));
    if (outcome.failed > 0) keep();
    if (opts.hold) {
      keep();
      for (const r of RELAYS)
        log(
          `holding; ${r.domain}: ssh -i ${keyPath} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@${r.addr}`,
        );
      log("press Ctrl-C to clean up");
      await new Promise(() => {});
    }

    return await testbed.finish(outcome);
  } catch (e) {
    return testbed.fail(e);
  }
}

if (require.main === module) runFromCommandLine(main);
