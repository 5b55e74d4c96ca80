import { spawn, type ChildProcess } from "node:child_process";
import { pbkdf2Sync } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeDaemonBundle } from "../../components/assets";
import { SERVICES } from "../../core/server";
import { parseInvocation, UsageError } from "../../daemons/main";
import { converse, DOMAIN, freePort, tempRelay, type TempRelay } from "./helpers";

describe("parseInvocation", () => {
  it("reads the ini path, services and socket options", () => {
    const inv = parseInvocation(["/x.ini", "doveauth", "metadata", "--doveauth-socket", "/tmp/a.sock"]);
    expect(inv.commands).toEqual(["doveauth", "metadata"]);
    expect(inv.values["doveauth-socket"]).toBe("/tmp/a.sock");
    expect(inv.values["metadata-socket"]).toBe("/run/chatmail-metadata/metadata.socket");
  });

  it("reads the one-shot flags; --legacy-metrics takes the absolute path after it", () => {
    const expire = parseInvocation(["/x.ini", "expire", "--dry-run", "-v", "--maxnum", "5"]);
    expect(expire).toMatchObject({ commands: ["expire"], values: { "dry-run": true, v: true, maxnum: "5" } });
    const report = parseInvocation(["/x.ini", "fsreport", "--legacy-metrics", "/tmp/m", "--days", "-1"]);
    expect(report).toMatchObject({
      commands: ["fsreport"],
      legacyMetricsFile: "/tmp/m",
      values: { days: "-1" },
    });
    expect(parseInvocation(["/x.ini", "fsreport", "--legacy-metrics"]).legacyMetricsFile).toBeUndefined();
  });

  it.each([
    [[], "chatmail.ini"],
    [["/x.ini"], "name a service"],
    [["/x.ini", "bogus"], 'unknown service "bogus"'],
    [["/x.ini", "doveauth", "--nope"], "unknown option --nope"],
    [["/x.ini", "doveauth", "expire"], "expire must be the only command"],
    [["/x.ini", "doveauth", "--doveauth-socket"], "--doveauth-socket: needs a value"],
    [["/x.ini", "expire", "--dry-run=yes"], "unknown option --dry-run=yes"],
    [["/x.ini", "expire", "--v"], "unknown option --v"],
    [["/x.ini", "expire", "-vv"], "unknown option -vv"],
    [["/x.ini", "doveauth", "--"], "unknown option --"],
    [["--dry-run", "/x.ini", "expire"], "first argument"],
  ])("rejects %j with a message naming the problem", (argv, message) => {
    expect(() => parseInvocation(argv)).toThrow(UsageError);
    expect(() => parseInvocation(argv)).toThrow(message);
  });
});

describe("the bundled chatmaild.js", () => {
  let relay: TempRelay;
  let bundle: string;
  let ini: string;

  beforeAll(async () => {
    relay = tempRelay();
    bundle = writeDaemonBundle(join(relay.dir, "chatmaild.js"));
    ini = join(relay.dir, "chatmail.ini");
    writeFileSync(
      ini,
      `[params]\nmail_domain = ${DOMAIN}\nmailboxes_dir = ${relay.config.mailboxesDir}\nmax_load_1m = 99999\nmin_available_memory = 0\nmin_free_disk_space = 0\n` +
        `filtermail_smtp_port = ${await freePort()}\nfiltermail_smtp_port_incoming = ${await freePort()}\nnew_account_port = ${await freePort()}\n`,
    );
  });
  afterAll(() => relay.cleanup());

  function run(args: string[]): {
    child: ChildProcess;
    stderr: () => string;
    exited: Promise<number | null>;
  } {
    const child = spawn(process.execPath, [bundle, ini, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr?.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return { child, stderr: () => err, exited };
  }

  async function waitFor(cond: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
    const start = Date.now();
    while (!cond()) {
      if (Date.now() - start > deadlineMs) throw new Error(`${what} not reached within ${deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it("runs every service in one process, creates an account, and exits 0 on SIGTERM", async () => {
    const sockets = { auth: relay.socket("auth"), meta: relay.socket("meta"), last: relay.socket("last") };
    const metricsPort = await freePort();
    const facts = join(relay.dir, "metrics.conf");
    writeFileSync(facts, "unit chatmaild.service\n");
    const p = run([
      ...SERVICES,
      "--doveauth-socket",
      sockets.auth,
      "--metadata-socket",
      sockets.meta,
      "--lastlogin-socket",
      sockets.last,
      "--nocreate-file",
      join(relay.dir, "nocreate"),
      "--metrics-port",
      String(metricsPort),
      "--metrics-facts",
      facts,
    ]);
    await waitFor(() => (p.stderr().match(/ started/g) ?? []).length === 6, "all six services started");
    await waitFor(() => p.stderr().includes("serving /metrics"), "the metrics listener");
    const reply = await converse(
      sockets.auth,
      `Lshared/passdb/q9mr3faue"abcdefghi@${DOMAIN}\tabcdefghi@${DOMAIN}\n`,
    );
    const [, , salt, rounds, hex] = (JSON.parse(reply.slice(1)).password as string).split("$");
    expect(pbkdf2Sync("q9mr3faue", salt, Number(rounds), 20, "sha1").toString("hex")).toBe(hex);
    expect(await converse(sockets.meta, `Lpriv/x/devicetoken\tabcdefghi@${DOMAIN}\n`)).toBe("O\n");
    expect(
      await converse(sockets.last, `B1\tx\nS1\tshared/last-login/abcdefghi@${DOMAIN}\t1700000000\nC1\n`),
    ).toBe("O\n");
    // The one process's metrics (metrics_address defaults to 127.0.0.1) count what its services did.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toContain('\nchatmail_account_creations_total{via="login"} 1\n');
    expect(metrics).toContain('\nchatmail_logins_total{result="ok"} 1\n');
    expect(metrics).toContain("\nchatmail_accounts 1\n");
    expect(metrics).toMatch(/\nchatmail_memory_available_bytes \d+\n/);
    expect(p.stderr()).not.toContain("no unit or certificate metrics"); // the facts file was read
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toContain("SIGTERM: closing");
  });

  it("runs expire as a one-shot; --dry-run leaves an inactive mailbox in place", async () => {
    const addr = `abcdefghi@${DOMAIN}`;
    expect(existsSync(join(relay.config.mailboxesDir, addr, "password"))).toBe(true);
    const dry = run(["expire", "--dry-run", "--days", "-1"]);
    expect(await dry.exited).toBe(2); // "--days -1": the value is not a whole number
    const p = spawn(process.execPath, [bundle, ini, "expire", "--dry-run", "-v"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    await new Promise((r) => p.on("exit", r));
    expect(out).toMatch(/\[dry run\] would have removed 1 out of 1 mailboxes/);
    expect(existsSync(join(relay.config.mailboxesDir, addr))).toBe(true);
  });

  it("builds byte-identical bundles from the same sources", async () => {
    const again = writeDaemonBundle(join(relay.dir, "again", "chatmaild.js"));
    expect(readFileSync(again).equals(readFileSync(bundle))).toBe(true);
  });

  it("prints a usage error and exits 2 for an unknown service", async () => {
    const p = run(["nosuchservice"]);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('unknown service "nosuchservice"');
  });

  it("runs fsreport and writes the legacy metrics file", async () => {
    const target = join(relay.dir, "metrics");
    const p = run(["fsreport", "--legacy-metrics", target]);
    expect(await p.exited).toBe(0);
    expect(readFileSync(target, "utf8")).toContain("accounts 1");
  });
});
