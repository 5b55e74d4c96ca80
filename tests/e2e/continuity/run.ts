// `npm run test:e2e:continuity`: the three ways a relay outlives its server, each deployed with the real
// `pulumi up` of one stack on booted Debian 12 containers:
//   1. adopt: server A is made to look the way cmdeploy 1.7.0 leaves a relay (cmdeploy.ts); the stack, set from
//      its chatmail.ini by import-ini, deploys on top; the prepared accounts log in with their old passwords and
//      find their mail and device tokens, the DKIM record is unchanged, cmdeploy's leftovers are gone, and the
//      online suite passes on the adopted server;
//   2. move: `npm run move -- prepare` copies the keys to a fresh server B, `pulumi up` configures B with
//      acceptMail false, a message is still accepted on A, `npm run move -- finish` stops A accepting mail and
//      copies accounts and mailboxes, `pulumi up` with acceptMail true turns mail on: everything of A works on B,
//      and A accepts nothing;
//   3. backup and restore: `npm run backup` of B (with mailboxes), B destroyed, `npm run restore` onto a fresh
//      server C before its first deploy, `pulumi up`: the accounts, their mail and the DKIM record are the old ones.
// Prints how long each path took; everything started is removed at the end.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseChatmailIni } from "../../../core/config";
import { importedOptions } from "../../../tools/import-ini";
import { TEST_DOMAIN, type RawOption } from "../config";
import { Engine, type Stack } from "../engine";
import { runFromCommandLine, startTestbedRun, type TestbedRun } from "../harness";
import { runSuite } from "../suite/runner";
import { SUITE } from "../suite";
import type { Deployed, SuiteContext } from "../suite/types";
import { startTestServer, type TestServer } from "../testServer";
import { CMDEPLOY_INI, cmdeployLeftoversGone, prepareCmdeployServer } from "./cmdeploy";
import { continuityPaths } from "./paths";

const log = (s: string) => process.stdout.write(`[cont] ${s}\n`);

/** Suite groups that do not apply here: the metrics group needs the single testbed's Prometheus, and
 * `pulumi destroy` would forget the stack that the move and the restore go on with. */
const SKIPPED_GROUPS = new Set(["metrics: Prometheus", "pulumi destroy"]);

export async function main(opts: { only?: string; hold?: boolean } = {}): Promise<number> {
  if (process.getuid?.() !== 0)
    throw new Error("the continuity testbed needs root (network namespaces, nspawn, mounts)");
  const testbed: TestbedRun = startTestbedRun("cmcont-", log);
  const { runDir, time, timed, keep } = testbed;
  try {
    const imported = Object.fromEntries(
      importedOptions(parseChatmailIni(CMDEPLOY_INI(TEST_DOMAIN)).config) as Array<[string, RawOption]>,
    );
    log(`chatmail.ini imported: ${JSON.stringify(imported)}`);
    const a = await startTestServer(testbed, log);
    const engine = new Engine(runDir, log);
    const stack: Stack = await engine.stack("continuity");
    /** The stack's options for `server`: what import-ini gave, the testbed's own, and overrides. */
    const options = (server: TestServer, overrides: Readonly<Record<string, RawOption>> = {}) =>
      server.options({ ...imported, ...overrides });
    const deployTo = async (
      server: TestServer,
      overrides: Readonly<Record<string, RawOption>> = {},
    ): Promise<Deployed> => {
      await stack.configureRelay(options(server, overrides), server.target);
      const { config, plan } = server.plan({ ...imported, ...overrides });
      return { config, plan, result: await stack.up(["--skip-preview"]) };
    };

    const paths = continuityPaths({
      runDir,
      engine,
      stack,
      a,
      deployTo,
      bootServer: () => startTestServer(testbed, log),
      prepare: (accounts) => prepareCmdeployServer(a.ssh, { domain: TEST_DOMAIN, accounts }),
      leftovers: () => cmdeployLeftoversGone(a.ssh),
      time,
      log,
    });

    // 1. Adopt: the server as cmdeploy left it, then our first `pulumi up`; then the online suite on it.
    const adopted = await paths.adopt();
    const ctx: SuiteContext = {
      addr: a.netns.containerAddr,
      domain: TEST_DOMAIN,
      first: adopted,
      ssh: a.ssh,
      container: a.container,
      hostSide: a.hostSide,
      irohReal: a.irohReal,
      netns: a.netns,
      deploy: (overrides = {}) => deployTo(a, overrides),
      stack,
      target: a.target,
      optionsFor: (overrides = {}) => options(a, overrides),
      transcript: () => engine.transcript.join("\n"),
      planFor: (overrides = {}) => a.plan({ ...imported, ...overrides }).plan,
      caCert: () => paths.caCert(),
      time,
    };
    const suite = SUITE.filter(([g]) => !SKIPPED_GROUPS.has(g));
    const groups = [...paths.adoptGroup(), ...suite, ...paths.groups()].filter(
      // `--only` is a regular expression here (`--only 'move|backup'`); adopting always runs, the rest builds on it.
      ([g]) => !opts.only || new RegExp(opts.only).test(g) || g.startsWith("adopt"),
    );
    // 2 and 3: the move and the backup and restore go on from the adopted relay after the suite.
    const outcome = await timed("suite", () => runSuite(groups, ctx, log));
    writeFileSync(join(runDir, "pulumi-transcript.txt"), ctx.transcript());
    log(`paths:\n${paths.report()}`);
    if (outcome.failed > 0) keep();
    if (opts.hold) {
      keep();
      log(`holding; keys and addresses in ${runDir}; press Ctrl-C to clean up`);
      await new Promise(() => {});
    }
    return await testbed.finish(outcome);
  } catch (e) {
    return testbed.fail(e);
  }
}

if (require.main === module) runFromCommandLine(main);
