// The pre-flight checks run as real sh scripts here: the port check against canned `ss` output (a stand-in
// `ss` on PATH), the OS check against os-release files written by the test.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { portClaims } from "../../core/plan/parts/preflight";
import type { CheckUnit } from "../../core/plan/types";
import { configFor, planFor, unit } from "./helpers";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "preflight-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const script = (ini: Record<string, string>, id: string) => (unit(planFor(ini), id) as CheckUnit).script;

/** Runs a check script with `ss` printing `listeners`. */
function runPortCheck(listeners: string[], ini: Record<string, string> = {}) {
  const fakeSs = join(dir, "ss");
  writeFileSync(join(dir, "listeners"), listeners.join("\n") + "\n");
  writeFileSync(fakeSs, `#!/bin/sh\ncat ${join(dir, "listeners")}\n`);
  chmodSync(fakeSs, 0o755);
  return spawnSync("sh", ["-eu", "-c", script(ini, "check:ports")], {
    encoding: "utf8",
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
  });
}

const tcp = (addr: string, name: string, pid: number) =>
  `tcp   LISTEN 0      100    ${addr}      0.0.0.0:*    users:(("${name}",pid=${pid},fd=13))`;

describe("preflight port check", () => {
  it("passes on a server where nothing listens", () => {
    const r = runPortCheck([]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("sees the relay's own processes as fine on a re-deploy", () => {
    const r = runPortCheck([
      tcp("0.0.0.0:25", "master", 10),
      tcp("[::]:25", "master", 10),
      tcp("127.0.0.1:53", "unbound", 11),
      tcp("0.0.0.0:993", "dovecot", 12),
      tcp("127.0.0.1:8443", "nginx", 13),
      tcp("127.0.0.1:10080", "node", 14),
      tcp("127.0.0.1:10090", "node", 15),
      tcp("127.0.0.1:402", "acmetool", 16),
      `udp   UNCONN 0      0      [::]:3478      [::]:*    users:(("iroh-relay",pid=17,fd=9))`,
      tcp("0.0.0.0:22", "sshd", 18),
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("lists every foreign process on a relay port, once each", () => {
    const r = runPortCheck([
      tcp("0.0.0.0:25", "exim4", 123),
      tcp("[::]:25", "exim4", 123),
      tcp("0.0.0.0:443", "apache2", 456),
      tcp("127.0.0.1:10090", "python3", 789),
    ]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toEqual([
      "port 25 is held by exim4 (pid 123); stop it or choose another server",
      "port 443 is held by apache2 (pid 456); stop it or choose another server",
      "port 10090 is held by python3 (pid 789); stop it or choose another server",
    ]);
  });

  it("follows the configured loopback ports", () => {
    const listeners = [tcp("127.0.0.1:12345", "exim4", 5)];
    expect(runPortCheck(listeners).status).toBe(0);
    const r = runPortCheck(listeners, { new_account_port: "12345" });
    expect(r.stderr).toContain("port 12345 is held by exim4 (pid 5)");
  });

  it("claims the iroh ports only when the relay runs its own iroh relay", () => {
    const ports = (ini: Record<string, string>) =>
      portClaims(configFor(ini)).map((c) => `${c.proto}/${c.port}`);
    expect(ports({})).toEqual(expect.arrayContaining(["tcp/3340", "udp/3478"]));
    expect(ports({ iroh_relay: "https://iroh.example.net" })).not.toContain("tcp/3340");
    // coturn's STUN and TURN port, UDP and TCP, with turnServer (the default) only.
    expect(ports({ iroh_relay: "https://iroh.example.net" })).toEqual(
      expect.arrayContaining(["udp/3478", "tcp/3478"]),
    );
    expect(ports({ iroh_relay: "https://iroh.example.net", turn_server: "false" })).not.toContain("udp/3478");
    expect(ports({ turn_server: "false" })).not.toContain("tcp/3478");
    expect(ports({ tls_mode: "self-signed" })).not.toContain("tcp/402");
    expect(ports({ mtail_address: "127.0.0.1" })).toEqual(expect.arrayContaining(["tcp/3903", "tcp/3904"]));
  });
});

describe("preflight OS check", () => {
  const runOsCheck = (osRelease: string, ini: Record<string, string> = {}) => {
    const file = join(dir, "os-release");
    writeFileSync(file, osRelease);
    // The script reads /etc/os-release; the test points it at its own file.
    return spawnSync("sh", ["-eu", "-c", script(ini, "check:os").split("/etc/os-release").join(file)], {
      encoding: "utf8",
    });
  };

  it("accepts the Debian release serverOs names", () => {
    const r = runOsCheck('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n');
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("refuses another release with a message naming both", () => {
    const r = runOsCheck('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("this server runs Debian GNU/Linux 11 (bullseye), but serverOs is debian-12");
  });

  it("refuses another distribution", () => {
    const r = runOsCheck('PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nVERSION_ID="24.04"\n', {
      server_os: "debian-13",
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("Ubuntu 24.04 LTS, but serverOs is debian-13");
  });
});
