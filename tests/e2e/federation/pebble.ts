// Debian's pebble as the test network's ACME CA. Its HTTPS listener gets a certificate from a CA the test makes
// (the package ships none); it validates HTTP-01 challenges on port 80 of the names it resolves through the
// test's knot (-dnsserver). It signs with a fresh root at every start: the root comes from its management API.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { run, waitFor } from "../proc";

export const ACME_NAME = "acme.example.net";
export const ACME_PORT = 14000;
const MANAGEMENT_PORT = 15000;
/** Pebble's fixed terms of service, which its directory announces and acmetool asks about. */
export const PEBBLE_TERMS = "data:text/plain,Do%20what%20thou%20wilt";

export interface Pebble {
  readonly directoryUrl: string;
  /** The CA that signed Pebble's own HTTPS certificate (acmetool must trust it to talk to Pebble). */
  readonly listenerCa: string;
  /** The root Pebble issues under (relays must trust it to verify each other). */
  readonly issuingRoot: string;
  close(): Promise<void>;
}

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 5000, servername: ACME_NAME }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(chunks).toString("utf8"))
          : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
      );
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${url}: timeout`)));
    req.end();
  });
}

async function listenerCertificate(
  dir: string,
  addr: string,
): Promise<{ ca: string; cert: string; key: string }> {
  const p = (f: string) => join(dir, f);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc"];
  await run("openssl", [
    "req",
    "-x509",
    ...ec,
    "-days",
    "2",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.pem"),
    "-subj",
    "/CN=chatmail federation test listener CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ]);
  await run("openssl", [
    "req",
    ...ec,
    "-keyout",
    p("key.pem"),
    "-out",
    p("req.pem"),
    "-subj",
    `/CN=${ACME_NAME}`,
  ]);
  writeFileSync(
    p("ext.cnf"),
    `subjectAltName=DNS:${ACME_NAME},IP:${addr}\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n`,
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    p("req.pem"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    p("ext.cnf"),
    "-out",
    p("cert.pem"),
  ]);
  return { ca: readFileSync(p("ca.pem"), "utf8"), cert: p("cert.pem"), key: p("key.pem") };
}

export async function startPebble(opts: {
  dir: string;
  netnsName: string;
  addr: string;
  dnsServer: string;
}): Promise<Pebble> {
  mkdirSync(opts.dir, { recursive: true });
  const tls = await listenerCertificate(opts.dir, opts.addr);
  const config = join(opts.dir, "pebble-config.json");
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `${opts.addr}:${ACME_PORT}`,
        managementListenAddress: `${opts.addr}:${MANAGEMENT_PORT}`,
        certificate: tls.cert,
        privateKey: tls.key,
        // Challenges go where a real CA sends them.
        httpPort: 80,
        tlsPort: 443,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const log = createWriteStream(join(opts.dir, "pebble.log"), { flags: "a" });
  const child: ChildProcess = spawn(
    "ip",
    ["netns", "exec", opts.netnsName, "pebble", "-config", config, "-dnsserver", `${opts.dnsServer}:53`],
    {
      stdio: ["ignore", "pipe", "pipe"],
      // No random validation delays and no deliberately refused nonces: the run is slow enough as it is.
      env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
    },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const running = () => child.exitCode === null && child.signalCode === null;
  const close = async () => {
    if (!running()) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (running()) child.kill("SIGKILL");
  };
  try {
    const base = `https://${opts.addr}:${MANAGEMENT_PORT}`;
    const issuingRoot = await waitFor("pebble's issuing root", 30_000, async () => {
      if (!running()) throw new Error(`pebble exited; see ${join(opts.dir, "pebble.log")}`);
      return await httpsGet(`${base}/roots/0`, tls.ca);
    });
    return { directoryUrl: `https://${ACME_NAME}:${ACME_PORT}/dir`, listenerCa: tls.ca, issuingRoot, close };
  } catch (e) {
    await close();
    throw e;
  }
}
