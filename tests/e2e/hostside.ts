// The test's HTTP server on the host end of the veth pair: it serves the iroh-relay archive the deploy downloads
// and records the push notifications chatmail-metadata posts. It listens on that address only, which the
// container reaches over the test's own link and nothing else can.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { IROH_ARCHIVE_PATH, NOTIFY_PATH } from "./config";
import { run } from "./proc";
import { cacheDir } from "./rootfs";

export interface IrohArchive {
  readonly path: string;
  /** sha256 of the binary inside (what irohRelaySha256 checks). */
  readonly binarySha256: string;
  /** False when it is the testbed's stand-in script rather than a real iroh-relay build. */
  readonly real: boolean;
}

/**
 * The iroh-relay archive built by tools/iroh/build.sh if present (its SHA256SUMS names the binary's hash), else a
 * stand-in: a script that stays running, so the service unit can be checked, but relays nothing.
 */
export async function irohArchive(workDir: string, member: string): Promise<IrohArchive> {
  const root = cacheDir();
  const builds = existsSync(root)
    ? readdirSync(root)
        .filter((d) => d.startsWith("iroh-relay-"))
        .sort()
    : [];
  for (const build of builds.reverse()) {
    for (const target of readdirSync(join(root, build)).sort()) {
      const dir = join(root, build, target);
      const sums = join(dir, "SHA256SUMS");
      const archive = readdirSync(dir).find((f) => f.endsWith(".tar.gz"));
      if (!existsSync(sums) || !archive) continue;
      const line = readFileSync(sums, "utf8")
        .split("\n")
        .find((l) => /\siroh-relay$/.test(l));
      if (line && member.replace(/^\.\//, "") === "iroh-relay") {
        return { path: join(dir, archive), binarySha256: line.split(/\s+/)[0], real: true };
      }
    }
  }
  const stage = join(workDir, "iroh-stage");
  mkdirSync(stage, { recursive: true });
  const script =
    "#!/bin/sh\n# Testbed stand-in for iroh-relay (no real build found): keeps the service running, relays nothing.\n" +
    "exec sleep infinity\n";
  const binary = join(stage, member);
  writeFileSync(binary, script);
  chmodSync(binary, 0o755);
  const path = join(workDir, "iroh-relay-standin.tar.gz");
  await run("tar", ["-C", stage, "--owner=0", "--group=0", "-czf", path, member]);
  return { path, binarySha256: createHash("sha256").update(script).digest("hex"), real: false };
}

export interface HostSideServer {
  readonly baseUrl: string;
  /** Bodies of the push notifications received, in order. */
  readonly notifications: string[];
  serveArchive(path: string): void;
  close(): Promise<void>;
}

export async function startHostSide(addr: string): Promise<HostSideServer> {
  let archive: string | undefined;
  const notifications: string[] = [];
  const server: Server = createServer((req, res) => {
    if (req.method === "GET" && req.url === IROH_ARCHIVE_PATH && archive) {
      res.writeHead(200, { "content-type": "application/gzip" });
      res.end(readFileSync(archive));
      return;
    }
    if (req.method === "POST" && req.url === NOTIFY_PATH) {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        notifications.push(Buffer.concat(chunks).toString("utf8"));
        res.writeHead(200).end();
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, addr, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    baseUrl: `http://${addr}:${port}`,
    notifications,
    serveArchive(path) {
      archive = path;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
