// The three continuity paths as suite groups, in the order they must run: adopt (server A), move (A to B),
// backup and restore (B to a fresh C). Each later group goes on from where the one before left the relay, so a
// failure early makes the later ones fail too, saying why. The tools run as an operator runs them: `npm run
// backup | restore | move` against the stack in the testbed's Pulumi project, with the engine's environment.
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { RelayConfig } from "../../../core/config";
import type { Engine, Stack } from "../engine";
import { run, type ProcResult } from "../proc";
import type { Deployed, E2eTest, RawOption } from "../suite/types";
import type { TestServer } from "../testServer";
import type { CmdeployServer } from "./cmdeploy";
import {
  accountsIntact,
  certFingerprint,
  clientView,
  dkimKey,
  preparedAccounts,
  sendEncrypted,
  zoneDkimKey,
  type PreparedAccount,
} from "./relay";

const REPO = join(__dirname, "../../..");

export interface ContinuityEnv {
  readonly runDir: string;
  readonly engine: Engine;
  readonly stack: Stack;
  /** The server cmdeploy "deployed": where the relay starts. */
  readonly a: TestServer;
  deployTo(server: TestServer, overrides?: Readonly<Record<string, RawOption>>): Promise<Deployed>;
  /** Boots one more fresh test server. */
  bootServer(): Promise<TestServer>;
  prepare(accounts: ReturnType<typeof preparedAccounts>): Promise<CmdeployServer>;
  leftovers(): Promise<string[]>;
  time(label: string, seconds: number): void;
  log(s: string): void;
}

/** The relay as it moves from server to server: which one holds it and what it must still have. */
class Relay {
  holder: TestServer;
  config!: RelayConfig;
  readonly accounts = preparedAccounts(3);
  /** Messages sent through the relay after the preparation, by recipient. */
  readonly extra = new Map<string, string[]>();
  dkim = "";
  cert = "";
  constructor(a: TestServer) {
    this.holder = a;
  }
  view() {
    return clientView(this.holder, this.config);
  }
  async intact(): Promise<void> {
    await accountsIntact(this.view(), this.accounts, this.extra);
  }
}

export function continuityPaths(env: ContinuityEnv) {
  const relay = new Relay(env.a);
  const report: string[] = [];
  const knownHosts = join(env.runDir, "continuity-known_hosts");
  const keyFile = join(env.runDir, "backup-key");
  writeFileSync(keyFile, "correct horse battery staple, continuity\n", { mode: 0o600 });

  /** Adds the server's host key to the tools' known_hosts, and lets every testbed key log in to it. */
  async function trust(servers: readonly TestServer[]) {
    const lines = await Promise.all(
      servers.map(
        async (s) => `${s.netns.containerAddr} ${await s.ssh.out("cat /etc/ssh/ssh_host_ed25519_key.pub")}`,
      ),
    );
    writeFileSync(knownHosts, lines.join("\n") + "\n");
    const keys = servers.map((s) => readFileSync(`${s.target.keyPath}.pub`, "utf8").trim()).join("\n");
    for (const s of servers) await s.ssh.exec("cat >>/root/.ssh/authorized_keys", { stdin: keys + "\n" });
  }

  /** `npm run <script> -- args` as an operator runs it, against the testbed's stack. */
  async function tool(
    script: string,
    args: readonly string[],
    allowFail = false,
    /** The output is a secret (the DKIM key): not logged. */
    secretOutput = false,
  ): Promise<ProcResult> {
    const t = Date.now();
    const r = await run(
      "npm",
      ["run", "--silent", script, "--", ...args, "--cwd", env.engine.projectDir, "--known-hosts", knownHosts],
      { cwd: REPO, env: env.engine.env, allowFail: true, timeoutMs: 600_000 },
    );
    env.log(
      `npm run ${script} -- ${args.join(" ")}: exit ${r.code} in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
    if (r.stdout.trim() && !secretOutput) env.log(r.stdout.trimEnd().replace(/^/gm, "    "));
    if (r.code !== 0 && !allowFail)
      throw new Error(`npm run ${script} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    return r;
  }
  const stackArgs = ["--stack", env.stack.name];

  async function timedPath<T>(label: string, f: () => Promise<T>): Promise<T> {
    const t = Date.now();
    const value = await f();
    const seconds = (Date.now() - t) / 1000;
    env.time(label, seconds);
    report.push(`${label}: ${seconds.toFixed(1)} s`);
    return value;
  }

  async function sameIdentity(where: string) {
    const dkim = await dkimKey(relay.holder);
    if (dkim !== relay.dkim) throw new Error(`${where}: the server's DKIM key changed`);
    const zone = String((await env.stack.outputs()).zoneFile ?? "");
    const published = zoneDkimKey(zone);
    if (published !== relay.dkim)
      throw new Error(
        `${where}: the zoneFile's DKIM record is not the old key (${published?.slice(0, 24)}…)`,
      );
    const cert = await certFingerprint(relay.holder, relay.config);
    if (cert !== relay.cert) throw new Error(`${where}: the server's certificate changed`);
  }

  /** Whether a TCP connection to the port is refused (nothing listens). */
  function refused(addr: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect({ host: addr, port, timeout: 5000 });
      s.once("connect", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(true));
      s.once("timeout", () => {
        s.destroy();
        resolve(false);
      });
    });
  }

  /** The first deploy on server A as cmdeploy left it. */
  async function adopt(): Promise<Deployed> {
    return timedPath("adopt: preparation and first pulumi up", async () => {
      const prepared = await env.prepare(relay.accounts);
      relay.dkim = prepared.dkimPublicKey;
      env.log(
        `cmdeploy-shaped server: ${relay.accounts.length} accounts, units ${prepared.units.join(", ")}`,
      );
      const deployed = await env.deployTo(env.a);
      relay.config = deployed.config;
      env.log(`first pulumi up on the adopted server: ${deployed.result.ran.length} steps`);
      return deployed;
    });
  }

  const adoptTests: E2eTest[] = [
    {
      name: "every account cmdeploy left logs in with its old password and finds its mail and device token",
      async run() {
        await relay.intact();
        relay.cert = await certFingerprint(relay.holder, relay.config);
      },
    },
    {
      name: "their password files keep cmdeploy's SHA512-CRYPT hashes",
      async run() {
        for (const acc of relay.accounts) {
          const file = `${relay.config.mailboxesDir}/${acc.addr}/password`;
          const head = await relay.holder.ssh.out(`head -c 14 ${file}`);
          if (head !== "{SHA512-CRYPT}") throw new Error(`${file} starts with ${head}`);
        }
      },
    },
    {
      name: "the DKIM key is cmdeploy's: the server keeps it and the stack's zoneFile publishes it",
      async run() {
        const zone = String((await env.stack.outputs()).zoneFile ?? "");
        if (zoneDkimKey(zone) !== relay.dkim)
          throw new Error("the zoneFile's DKIM record is not cmdeploy's key");
        if ((await dkimKey(relay.holder)) !== relay.dkim) throw new Error("the server's DKIM key changed");
      },
    },
    {
      name: "cmdeploy's Python units, cron files and virtualenv are gone",
      async run() {
        const left = await env.leftovers();
        if (left.length > 0) throw new Error(`still there: ${left.join(", ")}`);
      },
    },
  ];

  let b: TestServer | undefined;
  const moveTests: E2eTest[] = [
    {
      name: "move: keys copied, B deployed with mail off, A still accepting, A stopped and copied, mail on at B",
      async run() {
        const a = relay.holder;
        await timedPath("move: A to B (boot of B excluded)", async () => {
          // B's boot is not part of the move: the operator orders the new server beforehand.
          b = await env.bootServer();
          await trust([a, b]);
          await tool("move", ["prepare", ...stackArgs, "--to", b.netns.containerAddr]);
        });
        const t = Date.now();
        const off = await env.deployTo(b!, { acceptMail: false });
        env.log(`pulumi up on B with acceptMail false: ${off.result.ran.length} steps`);
        if (!(await refused(b!.netns.containerAddr, 25)))
          throw new Error("B accepts SMTP with acceptMail false");
        // Mail still reaches A while B is being set up (DNS and the senders' caches still point there).
        const [to, from] = relay.accounts;
        const id = await sendEncrypted(clientView(a, relay.config), from, to);
        relay.extra.set(to.addr, [id]);
        await tool("move", ["finish", ...stackArgs, "--from", a.netns.containerAddr]);
        relay.holder = b!;
        const on = await env.deployTo(b!, { acceptMail: true });
        relay.config = on.config;
        const seconds = (Date.now() - t) / 1000;
        env.time("move: B deploy, finish, mail on", seconds);
        report.push(`move: B deploy with mail off, finish, mail on: ${seconds.toFixed(1)} s`);
        await relay.intact();
      },
    },
    {
      name: "after the move A accepts no mail: ports 25, 465 and 587 are closed",
      async run() {
        for (const port of [25, 465, 587])
          if (!(await refused(env.a.netns.containerAddr, port)))
            throw new Error(`A still listens on ${port}`);
      },
    },
    {
      name: "after the move B has A's DKIM key and certificate, and the zoneFile publishes the same DKIM record",
      run: () => sameIdentity("after the move"),
    },
    {
      name: "mail flows on B after the move",
      async run() {
        const [to, from] = relay.accounts;
        const id = await sendEncrypted(relay.view(), from, to);
        relay.extra.set(to.addr, [...(relay.extra.get(to.addr) ?? []), id]);
        await relay.intact();
      },
    },
  ];

  const backupFile = join(env.runDir, "relay.backup");
  /** `npm run restore` of the backup onto the stack's server, or the one `extra` names. */
  const restoreBackup = (extra: string[]) =>
    tool("restore", [...stackArgs, "--in", backupFile, "--key-file", keyFile, ...extra]);
  const backupTests: E2eTest[] = [
    {
      name: "backup: npm run backup writes an encrypted archive that shows no key, hash or message",
      async run() {
        await timedPath("backup of B with mailboxes", () =>
          tool("backup", [...stackArgs, "--out", backupFile, "--key-file", keyFile, "--mailboxes"]),
        );
        if (!existsSync(backupFile)) throw new Error("no archive written");
        if ((statSync(backupFile).mode & 0o077) !== 0) throw new Error("the archive is readable by others");
        const bytes = readFileSync(backupFile).toString("latin1");
        for (const plain of [
          "PRIVATE KEY",
          "SHA512-CRYPT",
          relay.accounts[0].messageIds[0],
          relay.accounts[0].addr,
        ])
          if (bytes.includes(plain))
            throw new Error(`the archive shows ${JSON.stringify(plain)} in the clear`);
        report.push(`backup: ${(statSync(backupFile).size / 1024).toFixed(0)} KiB`);
      },
    },
    {
      name: "restore with a wrong key or a damaged archive is refused and changes nothing",
      async run() {
        const wrongKey = join(env.runDir, "wrong-key");
        writeFileSync(wrongKey, "not the key that encrypted it at all\n", { mode: 0o600 });
        const probe = relay.holder;
        const before = await probe.ssh.out(`find ${relay.config.mailboxesDir} -type f | sort | md5sum`);
        const wrong = await tool(
          "restore",
          [...stackArgs, "--in", backupFile, "--key-file", wrongKey, "--force"],
          true,
        );
        if (wrong.code === 0) throw new Error("restore with a wrong key succeeded");
        const damaged = join(env.runDir, "damaged.backup");
        const bytes = readFileSync(backupFile);
        bytes[Math.floor(bytes.length / 2)] ^= 0x55;
        writeFileSync(damaged, bytes, { mode: 0o600 });
        const broken = await tool(
          "restore",
          [...stackArgs, "--in", damaged, "--key-file", keyFile, "--force"],
          true,
        );
        if (broken.code === 0) throw new Error("restore of a damaged archive succeeded");
        const after = await probe.ssh.out(`find ${relay.config.mailboxesDir} -type f | sort | md5sum`);
        if (after !== before) throw new Error("a refused restore changed the mailboxes");
      },
    },
    {
      name: "restore: B destroyed, the archive restored onto a fresh server C, pulumi up: all accounts and mail are back",
      async run() {
        await b!.container.stop();
        const c = await env.bootServer();
        await trust([c]);
        await timedPath("restore onto C and pulumi up (boot of C excluded)", async () => {
          await restoreBackup(["--host", c.netns.containerAddr, "--ssh-key", c.target.keyPath]);
          relay.holder = c;
          relay.config = (await env.deployTo(c)).config;
        });
        await relay.intact();
      },
    },
    {
      name: "after the restore C has the old DKIM key and certificate, and the zoneFile publishes the same DKIM record",
      run: () => sameIdentity("after the restore"),
    },
  ];

  const replacedTests: E2eTest[] = [
    {
      name: "replaced server: deployed with the backup's DKIM key as dkimPrivateKey and mail off, accounts and mailboxes restored, mail on: all is back",
      async run() {
        await relay.holder.container.stop();
        const d = await env.bootServer();
        await trust([d]);
        const pem = await timedPath(
          "replaced server: deploy with dkimPrivateKey and mail off, restore, mail on (boot excluded)",
          async () => {
            const key = (
              await tool("restore", ["dkim-key", "--in", backupFile, "--key-file", keyFile], false, true)
            ).stdout.trim();
            if (!/^-----BEGIN (RSA )?PRIVATE KEY-----/.test(key))
              throw new Error("dkim-key printed no PEM key");
            await env.deployTo(d, { dkimPrivateKey: key, acceptMail: false });
            relay.holder = d;
            // The server is deployed: accounts and mailboxes only (its keys were read back already).
            await restoreBackup(["--parts", "accounts,mailboxes"]);
            relay.config = (await env.deployTo(d, { dkimPrivateKey: key, acceptMail: true })).config;
            return key;
          },
        );
        await relay.intact();
        // A replaced server makes its own self-signed certificate; the DKIM identity is the old one.
        relay.cert = await certFingerprint(d, relay.config);
        await sameIdentity("on the replaced server");
        // The key went in as a Pulumi secret: no line of it in anything the CLI printed.
        const body = pem.split("\n").find((l) => l.length > 40 && !l.startsWith("-----"))!;
        if (env.engine.transcript.join("\n").includes(body))
          throw new Error("a line of dkimPrivateKey appears in the Pulumi CLI's output");
      },
    },
  ];

  return {
    adopt,
    caCert: () => relay.view().caCert(),
    groups: (): Array<[string, E2eTest[]]> => [
      ["move to a new server", moveTests],
      ["backup and restore", backupTests],
      ["a replaced server keeps its DKIM key", replacedTests],
    ],
    adoptGroup: (): Array<[string, E2eTest[]]> => [["adopt a cmdeploy relay", adoptTests]],
    report: () => report.join("\n"),
  };
}

export type { PreparedAccount };
