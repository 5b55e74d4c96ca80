// `npm run check` against both deployed relays, as an operator runs it: the stacks' config and outputs through the
// pulumi CLI, DNS at the authoritative server (the test's knot, found through NS from --resolver), TLS from this
// machine, the server over SSH, a live round trip. Every row is ok; then one thing at a time is broken (a wrong
// DKIM record, a stopped service, a missing PTR, a certificate about to expire) and exactly that row must fail.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PATHS } from "../../../core/plan/facts";
import { renderTable, type Row } from "../../../tools/check/rows";
import { run } from "../proc";
import type { E2eTest } from "../suite/types";
import { reverseZones, type Knot, type Zone } from "./dns";
import { DNS_ADDR } from "./net";
import type { FedContext, Relay } from "./suite";

export interface CheckEnv {
  readonly knot: Knot;
  /** What knot serves after the deploy: the stacks' zone files, example.net, the reverse zones. */
  readonly zones: readonly Zone[];
  /** The relays' addresses as the stacks export them, for the reverse zones. */
  readonly addresses: ReadonlyArray<{ domain: string; addrs: readonly string[] }>;
  /** The engine's environment (pulumi on PATH, backend, passphrase) and project folder. */
  readonly engineEnv: NodeJS.ProcessEnv;
  readonly projectDir: string;
  readonly runDir: string;
}

const REPO = join(__dirname, "../../..");
const log = (s: string) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`);

export function checkGroup(fed: FedContext, env: CheckEnv): E2eTest[] {
  const [a, b] = fed.relays;
  const caFile = join(env.runDir, "check-ca.pem");
  const knownHosts = join(env.runDir, "check-known_hosts");
  let testCa: string | undefined;

  /** The trust the check runs with: Pebble's roots, and a test CA that signs the short-lived certificate. */
  async function prepare() {
    if (testCa) return;
    const args = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout test-ca.key";
    await run("openssl", `${args} -out test-ca.pem -days 30 -subj /CN=check-test-CA`.split(" "), {
      cwd: env.runDir,
    });
    testCa = readFileSync(join(env.runDir, "test-ca.pem"), "utf8");
    writeFileSync(caFile, fed.trusted + testCa);
    const keys = await Promise.all(
      fed.relays.map(
        async (r) => `${r.spec.addr} ${await r.ssh.out("cat /etc/ssh/ssh_host_ed25519_key.pub")}`,
      ),
    );
    writeFileSync(knownHosts, keys.join("\n") + "\n");
  }

  /**
   * A certificate for relay A's names and its current key, valid three days, signed by the test CA: the key never
   * leaves the server (it signs a request there), and acmetool's store keeps its own files, so only the chain
   * the services read (`fullchain`) changes.
   */
  async function shortChain(): Promise<string> {
    await prepare();
    const d = a.spec.domain;
    const csr = await a.ssh.out(
      `openssl req -new -key "$(readlink -f /var/lib/acme/live/${d}/privkey)" -subj /CN=${d}`,
    );
    const dir = env.runDir;
    writeFileSync(join(dir, "short.csr"), csr + "\n");
    writeFileSync(join(dir, "short.ext"), `subjectAltName=DNS:${d},DNS:mta-sts.${d},DNS:www.${d}\n`);
    const args = "x509 -req -in short.csr -CA test-ca.pem -CAkey test-ca.key -CAcreateserial -days 3";
    await run("openssl", `${args} -extfile short.ext -out short.pem`.split(" "), { cwd: dir });
    return readFileSync(join(dir, "short.pem"), "utf8") + testCa!;
  }

  /** `npm run check` of relay's stack, or with `ini` of that chatmail.ini (as for a relay cmdeploy deployed). */
  async function check(relay: Relay, ini?: string): Promise<{ rows: Row[]; exitCode: number; code: number }> {
    await prepare();
    const other = relay === a ? b : a;
    const t = Date.now();
    const args = ["run", "--silent", "check", "--"].concat(
      ini
        ? ["--ini", ini, "--host", relay.spec.addr, "--ssh-key", relay.ctx.target.keyPath]
        : ["--stack", `relay-${relay.spec.tag}`, "--cwd", env.projectDir],
    );
    const more = [
      "--resolver",
      DNS_ADDR,
      "--known-hosts",
      knownHosts,
      "--probe-host",
      other.spec.domain,
      "--json",
    ];
    const r = await run("npm", [...args, ...more], {
      cwd: REPO,
      env: { ...env.engineEnv, NODE_EXTRA_CA_CERTS: caFile },
      allowFail: true,
      timeoutMs: 180_000,
    });
    fed.time(`npm run check ${relay.spec.tag}`, (Date.now() - t) / 1000);
    let parsed: { rows: Row[]; exitCode: number };
    try {
      parsed = JSON.parse(r.stdout) as { rows: Row[]; exitCode: number };
    } catch {
      throw new Error(`npm run check printed no JSON (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    }
    if (parsed.exitCode !== r.code) throw new Error(`exit code ${r.code}, JSON says ${parsed.exitCode}`);
    return { ...parsed, code: r.code };
  }

  const allOk = async (relay: Relay, ini?: string) => {
    const { rows, code } = await check(relay, ini);
    log(
      `npm run check -- ${ini ? `--ini ${ini}` : `--stack relay-${relay.spec.tag}`}:\n${renderTable(rows)}`,
    );
    const bad = rows.filter((r) => r.status !== "ok");
    if (bad.length > 0 || code !== 0) throw new Error(`not all ok (exit ${code}):\n${renderTable(bad)}`);
    for (const group of ["dns", "reach", "server", "roundtrip"])
      if (!rows.some((r) => r.group === group)) throw new Error(`no ${group} row`);
  };

  /** Breaks one thing, runs the check, restores; exactly `row` must fail, with advice, and the exit code be 1. */
  const onlyRowFails = async (row: string, breakIt: () => Promise<void>, restore: () => Promise<void>) => {
    await breakIt();
    let result;
    try {
      result = await check(a);
    } finally {
      await restore();
    }
    const { rows, code } = result;
    log(`npm run check -- --stack relay-a, broken (${row}):\n${renderTable(rows)}`);
    const bad = rows.filter((r) => r.status !== "ok");
    if (bad.length !== 1 || bad[0].check !== row || bad[0].status !== "fail" || !bad[0].advice || code !== 1)
      throw new Error(`expected exactly "${row}" to fail (exit 1), got exit ${code}:\n${renderTable(bad)}`);
  };

  const dkimName = `opendkim._domainkey.${a.spec.domain}`;
  const loadZones = (zones: readonly Zone[]) => env.knot.load(zones);
  const withZone = (origin: string, edit: (body: string) => string) =>
    env.zones.map((z) => (z.origin === origin ? { ...z, body: edit(z.body) } : z));
  const fullchain = `/var/lib/acme/live/${a.spec.domain}/fullchain`;
  const serveChain = async (pem: string) => {
    await a.ssh.exec(
      `cat >"$(readlink -f ${fullchain})"\nsystemctl restart nginx.service postfix.service dovecot.service`,
      { stdin: pem.trim() + "\n" },
    );
  };

  return [
    {
      name: "npm run check shows every row ok for relay A",
      run: () => allOk(a),
    },
    {
      name: "npm run check shows every row ok for relay B",
      run: () => allOk(b),
    },
    {
      name: "npm run check --ini, as for a relay cmdeploy deployed, reads its chatmail.ini and shows every row ok",
      async run() {
        const ini = join(env.runDir, "chatmail-b.ini");
        writeFileSync(ini, await b.ssh.out(`cat ${PATHS.chatmailIni}`));
        await allOk(b, ini);
      },
    },
    {
      name: "a wrong DKIM record in the zone fails exactly the DKIM row",
      run: () => {
        const other = generateKeyPairSync("rsa", { modulusLength: 1024 })
          .publicKey.export({ type: "spki", format: "der" })
          .toString("base64");
        const wrong = withZone(a.spec.domain, (body) =>
          body
            .split("\n")
            .map((l) =>
              l.startsWith(`${dkimName}.`)
                ? `${dkimName}. 3600 IN TXT "v=DKIM1;k=rsa;p=${other};s=email;t=s"`
                : l,
            )
            .join("\n"),
        );
        return onlyRowFails(
          `DKIM ${dkimName}`,
          () => loadZones(wrong),
          () => loadZones(env.zones),
        );
      },
    },
    {
      name: "a stopped service fails exactly its unit row",
      run: () =>
        onlyRowFails(
          "unit iroh-relay.service",
          () => a.ssh.out("systemctl stop iroh-relay.service").then(() => {}),
          () => a.ssh.out("systemctl start iroh-relay.service").then(() => {}),
        ),
    },
    {
      name: "a missing PTR fails exactly the PTR row of that address",
      run: () => {
        const withoutA = [
          ...env.zones.filter((z) => !z.origin.endsWith(".arpa")),
          ...reverseZones(
            env.addresses.map((r) =>
              r.domain === a.spec.domain ? { ...r, addrs: r.addrs.filter((x) => x !== a.spec.addr) } : r,
            ),
          ),
        ];
        return onlyRowFails(
          `PTR ${a.spec.addr}`,
          () => loadZones(withoutA),
          () => loadZones(env.zones),
        );
      },
    },
    {
      name: "a certificate that expires in three days fails exactly the expiry row",
      async run() {
        const original = await a.ssh.out(`cat "$(readlink -f ${fullchain})"`);
        const short = await shortChain();
        await onlyRowFails(
          "certificate expiry",
          () => serveChain(short),
          () => serveChain(original),
        );
      },
    },
  ];
}
