// `npm run try`: the newcomer's first command. Boots a local Debian 12 container with the testbed's machinery
// (root, Linux), deploys a relay into it with the real `pulumi preview` and `pulumi up`, and prints the web address,
// a `dclogin:` link for Delta Chat and how to stop it. The relay keeps running in the background until
// `npm run try -- --stop`, which removes everything it started (container, network namespace, stack state).
//
// The background process is this same file with `--serve`: it owns the container and cleans up on SIGTERM.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { TEST_DOMAIN } from "../tests/e2e/config";
import { Engine } from "../tests/e2e/engine";
import { startTestbedRun } from "../tests/e2e/harness";
import { waitFor } from "../tests/e2e/proc";
import { startTestServer } from "../tests/e2e/testServer";

const HOME = join(
  process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? "/root", ".cache"),
  "chatmail-relay",
  "try",
);
const PID_FILE = join(HOME, "pid");
const STATUS_FILE = join(HOME, "status.json");
const LOG_FILE = join(HOME, "log.txt");
const READY_DEADLINE_MS = 20 * 60_000;

interface Status {
  readonly state: "ready" | "failed";
  readonly lines: string[];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const runningPid = () => (existsSync(PID_FILE) ? Number(readFileSync(PID_FILE, "utf8")) : 0);

/** A fresh address from the relay's /new, as a `dclogin:` link the Delta Chat app can open. */
function newAccountLink(addr: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      // The trial relay has a self-signed certificate; this one request accepts it, knowingly.
      {
        host: addr,
        port: 443,
        method: "POST",
        path: "/new",
        servername: TEST_DOMAIN,
        rejectUnauthorized: false,
      },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => {
          const link = (JSON.parse(body) as { dclogin_url?: string }).dclogin_url;
          if (res.statusCode === 200 && link) resolve(link);
          else reject(new Error(`POST /new: status ${res.statusCode}: ${body}`));
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The background part: boot, deploy with the engine, report, then hold until SIGTERM cleans up. */
async function serve(): Promise<void> {
  const log = (s: string) => process.stdout.write(`[try] ${s}\n`);
  const testbed = startTestbedRun("cmtry-", log);
  try {
    const server = await startTestServer(testbed, log);
    // A Pulumi CLI the operator installed downloads the real command plugin; without one, the test tools.
    const installed = spawnSync("pulumi", ["version"]).status === 0;
    log(
      installed
        ? "using the pulumi on PATH"
        : "no pulumi on PATH: using the tools of tests/tools/pulumi/build.sh",
    );
    const engine = new Engine(testbed.runDir, log, installed ? "installed" : "built");
    const stack = await engine.stack("try");
    await stack.configureRelay(server.options(), server.target);
    log("pulumi preview --diff");
    log((await stack.preview()).output);
    log("pulumi up");
    const up = await stack.up(["--skip-preview"]);
    log(up.output);
    const addr = server.target.address;
    // The name chat.example.org resolves nowhere outside the namespace, so the link names the server's address for
    // IMAP and SMTP (dclogin's ih/sh) and accepts its self-signed certificate for both (ic/sc=3).
    const link = `${(await newAccountLink(addr)).replace(/&ic=\d/, "")}&ih=${addr}&sh=${addr}&ic=3&sc=3`;
    const status: Status = {
      state: "ready",
      lines: [
        `The relay ${TEST_DOMAIN} runs in a local container at ${addr} (deployed by pulumi up in ${up.seconds.toFixed(0)} s).`,
        `Web page:   https://${addr}/   (self-signed certificate, for the name ${TEST_DOMAIN})`,
        `Delta Chat: ${link}`,
        `            (a new address on the trial relay; open the link in Delta Chat on this machine)`,
        `Server:     ssh -i ${server.target.keyPath} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@${addr}`,
        `Pulumi:     the stack's project folder is ${engine.projectDir} (backend ${engine.stateDir})`,
        `Stop it and remove everything: npm run try -- --stop`,
      ],
    };
    writeFileSync(STATUS_FILE, JSON.stringify(status));
    await new Promise(() => {});
  } catch (e) {
    writeFileSync(STATUS_FILE, JSON.stringify({ state: "failed", lines: [String((e as Error).stack ?? e)] }));
    await testbed.fail(e);
    process.exit(1);
  }
}

async function start(): Promise<number> {
  if (process.getuid?.() !== 0)
    throw new Error("npm run try needs root (network namespaces, nspawn, mounts)");
  const pid = runningPid();
  if (pid && alive(pid)) {
    if (existsSync(STATUS_FILE))
      console.log((JSON.parse(readFileSync(STATUS_FILE, "utf8")) as Status).lines.join("\n"));
    else console.log(`a trial relay is starting (pid ${pid}); its log: ${LOG_FILE}`);
    return 0;
  }
  mkdirSync(HOME, { recursive: true });
  rmSync(STATUS_FILE, { force: true });
  const out = openSync(LOG_FILE, "w");
  const child = spawn(process.execPath, [...process.execArgv, __filename, "--serve"], {
    detached: true,
    stdio: ["ignore", out, out],
  });
  writeFileSync(PID_FILE, String(child.pid));
  child.unref();
  console.log(
    `booting a Debian 12 container and deploying with pulumi (log: ${LOG_FILE}); the first run builds the root filesystem, which takes a few minutes`,
  );
  const status = await waitFor(
    "the trial relay",
    READY_DEADLINE_MS,
    async () =>
      existsSync(STATUS_FILE) ? (JSON.parse(readFileSync(STATUS_FILE, "utf8")) as Status) : undefined,
    1000,
  );
  console.log(status.lines.join("\n"));
  return status.state === "ready" ? 0 : 1;
}

async function stop(): Promise<number> {
  const pid = runningPid();
  if (!pid || !alive(pid)) {
    console.log("no trial relay is running");
    rmSync(PID_FILE, { force: true });
    return 0;
  }
  process.kill(pid, "SIGTERM");
  await waitFor("the trial relay to clean up", 120_000, async () => (alive(pid) ? undefined : true), 500);
  rmSync(PID_FILE, { force: true });
  rmSync(STATUS_FILE, { force: true });
  console.log("stopped: container, network namespace and the trial stack are removed");
  return 0;
}

const mode = process.argv.includes("--serve") ? serve : process.argv.includes("--stop") ? stop : start;
mode().then(
  (code) => code !== undefined && process.exit(code),
  (e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  },
);
