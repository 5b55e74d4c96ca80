// What `npm run bench -- auth` compares the daemons with, measured in the same run on the same machine:
// - a do-nothing server: a plain Node process that answers every request line with a constant reply of a
//   doveauth reply's size (the floor for any daemon behind this client);
// - this repo's dict server answering a constant (the protocol code without doveauth's lookup);
// - the platform's own SHA512-CRYPT (glibc's, through Python's crypt module or `openssl passwd -6`), the hash
//   Python chatmaild computed for every new account.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { NODE_FLAGS } from "./chatmaild";

/** A reply value as long as doveauth's for a bench account (addr, home, uid, gid and a stored hash). */
export const CONSTANT_VALUE = `{"addr": "x", "home": "/x", "uid": "vmail", "gid": "vmail", "password": "${"x".repeat(160)}"}`;

const DO_NOTHING_SERVER = `
const [path, value] = process.argv.slice(1);
const reply = Buffer.from("O" + value + "\\n");
require("node:net").createServer((s) => s.on("data", (d) => {
  let n = 0;
  for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) n++;
  if (n > 0) s.write(n === 1 ? reply : Buffer.concat(Array(n).fill(reply)));
})).listen(path, () => console.log("ready"));
`;

export interface Reference {
  name: string;
  pid: number;
  socket: string;
  stop(): void;
}

async function started(name: string, child: ChildProcess, socket: string): Promise<Reference> {
  await new Promise((resolve, reject) => {
    child.stdout!.once("data", resolve);
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { name, pid: child.pid as number, socket, stop: () => child.kill() };
}

export function startDoNothing(dir: string): Promise<Reference> {
  const socket = join(dir, "do-nothing.socket");
  const child = spawn(process.execPath, [...NODE_FLAGS, "-e", DO_NOTHING_SERVER, socket, CONSTANT_VALUE], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return started("do-nothing Node server", child, socket);
}

export function startConstantDict(dir: string): Promise<Reference> {
  const socket = join(dir, "constant-dict.socket");
  const bundle = join(dir, "constant-dict.js");
  buildSync({
    entryPoints: [join(__dirname, "constant-dict-main.ts")],
    bundle: true,
    platform: "node",
    target: "node18",
    format: "cjs",
    outfile: bundle,
    logLevel: "error",
  });
  const child = spawn(process.execPath, [...NODE_FLAGS, bundle, socket, CONSTANT_VALUE], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return started("dictproxy answering a constant", child, socket);
}

/** The platform's SHA512-CRYPT (5000 rounds): CPU ms per hash on one core, and what computed it. */
export interface PlatformCrypt {
  tool: string;
  cpuMsPerHash: number;
}

const PYTHON_CRYPT = `
import crypt, time, warnings
n = int(__import__("sys").argv[1])
t = time.process_time()
for i in range(n):
    crypt.crypt("benchpassword%d" % i, crypt.mksalt(crypt.METHOD_SHA512))
print((time.process_time() - t) * 1000 / n)
`;

/** Measures glibc's sha512crypt through python3's crypt module, else through openssl; undefined if neither runs. */
export function platformSha512Crypt(hashes: number): PlatformCrypt | undefined {
  try {
    const out = execFileSync("python3", ["-W", "ignore", "-c", PYTHON_CRYPT, String(hashes)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return { tool: "glibc crypt(3) via python3 crypt", cpuMsPerHash: Number(out.trim()) };
  } catch {
    // No python3, or one without the crypt module (3.13 removed it): try openssl.
  }
  try {
    // bash's `times` prints its children's user and system time on its second line.
    const passwords = Array.from({ length: hashes }, (_, i) => `benchpassword${i}\n`).join("");
    const out = execFileSync("bash", ["-c", "openssl passwd -6 -stdin >/dev/null && times"], {
      input: passwords,
      encoding: "utf8",
    });
    const [user, sys] = [
      ...out
        .trim()
        .split("\n")[1]
        .matchAll(/(\d+)m([\d.]+)s/g),
    ].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000);
    return { tool: "openssl passwd -6", cpuMsPerHash: (user + sys) / hashes };
  } catch {
    return undefined;
  }
}
