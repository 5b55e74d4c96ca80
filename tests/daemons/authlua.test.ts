// auth.lua, Dovecot 2.4's passdb and userdb (serverOs debian-13), against the real doveauth on a socket: Lua 5.4
// with lua-socket (as dovecot-core and lua-socket on Debian 13) runs the script's lookup functions with a
// stand-in for Dovecot's `dovecot.auth` constants and request objects. Dovecot 2.4 itself runs it in the Debian 13
// testbed (`npm run test:e2e -- --os debian-13`).
import { spawn } from "node:child_process";
import { pbkdf2Sync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startDoveauth } from "../../daemons/doveauth";
import { memoryLogger } from "../../daemons/dictproxy/log";
import type { Service } from "../../daemons/service";
import { PATHS } from "../../core/plan/facts";
import { planFor, text } from "../plan/helpers";
import { DOMAIN, tempRelay, type TempRelay } from "./helpers";

const relays: TempRelay[] = [];
const services: Service[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  for (const r of relays.splice(0)) r.cleanup();
});

/** A relay dir with auth.lua pointed at its doveauth socket; doveauth runs unless `running` is false. */
async function setUp(ini: Record<string, string> = {}, running = true) {
  const relay = tempRelay(ini);
  relays.push(relay);
  const sock = relay.socket("doveauth");
  const script = join(relay.dir, "auth.lua");
  const rendered = text(planFor({ server_os: "debian-13" }), "/etc/dovecot/auth.lua");
  expect(rendered).toContain(`"${PATHS.doveauthSocket}"`);
  writeFileSync(script, rendered.replace(PATHS.doveauthSocket, sock));
  const start = async () =>
    services.push(await startDoveauth(relay.config, { socketPath: sock, log: memoryLogger("doveauth") }));
  if (running) await start();
  /** Stops doveauth, closing its connections, and starts it again on the same socket. */
  const restart = async () => {
    await services.pop()!.close();
    await start();
  };
  return { relay, script, restart };
}

const STAND_IN = `
local codes = { "PASSDB_RESULT_OK", "PASSDB_RESULT_USER_UNKNOWN", "PASSDB_RESULT_INTERNAL_FAILURE",
  "USERDB_RESULT_OK", "USERDB_RESULT_USER_UNKNOWN", "USERDB_RESULT_INTERNAL_FAILURE" }
dovecot = { auth = {}, i_error = function(m) io.stderr:write(m, "\\n") end }
for i, name in ipairs(codes) do dovecot.auth[name] = i end
local function show(code, value)
  if type(value) ~= "table" then return codes[code] .. " " .. tostring(value) end
  local keys = {}
  for k in pairs(value) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. value[k] end
  return codes[code] .. " " .. table.concat(parts, " ")
end
`;

type Call =
  | { passdb: { user: string; password: string; remote_ip?: string } }
  | { userdb: string }
  | { iterate: true }
  /** The script waits here (printing PAUSE) until `onPause` has run. */
  | { pause: true };

/**
 * Runs the calls in one Lua process (one connection, as in an auth-worker); one output line per lookup.
 * Asynchronous, so that doveauth in this process can answer the script meanwhile.
 */
function runLua(
  script: string,
  calls: Call[],
  onPause: () => Promise<void> = async () => {},
): Promise<string[]> {
  const lua = (s: string) => JSON.stringify(s);
  const lines = calls.map((c) => {
    if ("passdb" in c) {
      const r = c.passdb;
      const ip = r.remote_ip === undefined ? "" : `, remote_ip = ${lua(r.remote_ip)}`;
      return `print(show(auth_passdb_lookup({ user = ${lua(r.user)}, password = ${lua(r.password)}${ip} })))`;
    }
    if ("userdb" in c) return `print(show(auth_userdb_lookup({ user = ${lua(c.userdb)} })))`;
    if ("pause" in c) return `print("PAUSE") io.stdout:flush() io.read("l")`;
    return `print("ITERATE " .. table.concat(auth_userdb_iterate(), " "))`;
  });
  const driver = `${STAND_IN}\ndofile(${lua(script)})\n${lines.join("\n")}\n`;
  return new Promise((resolve, reject) => {
    // Dovecot's processes ignore SIGPIPE, so writing to a connection doveauth closed is an error, not death.
    const child = spawn("sh", ["-c", `trap '' PIPE; exec lua5.4 -e "$0"`, driver]);
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (stdout.endsWith("PAUSE\n")) onPause().then(() => child.stdin.write("\n"), reject);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`lua5.4 exited with ${code}:\n${stderr}`));
      else
        resolve(
          stdout
            .trimEnd()
            .split("\n")
            .filter((l) => l !== "PAUSE"),
        );
    });
  });
}

const pbkdf2Matches = (stored: string, password: string) => {
  const [, , salt, rounds, hex] = stored.slice("{PBKDF2}".length).split("$");
  return pbkdf2Sync(password, salt, Number(rounds), 20, "sha1").toString("hex") === hex;
};

describe("auth.lua (Dovecot 2.4) with doveauth", () => {
  it("creates the account at the first login and hands Dovecot the stored hash to compare", async () => {
    const { relay, script } = await setUp();
    const addr = `alice0001@${DOMAIN}`;
    // Quote, apostrophe, backslash and TAB each need an escape on the way: %E-style in the key, \\001 on the wire.
    const password = `pa"ss'wo\\rd\twith-all-of-them`;
    const out = await runLua(script, [
      { passdb: { user: addr, password, remote_ip: "192.0.2.7" } },
      { passdb: { user: addr, password: "another password entirely" } },
    ]);
    const stored = readFileSync(join(relay.config.mailboxesDir, addr, "password"), "utf8").trim();
    expect(pbkdf2Matches(stored, password)).toBe(true);
    // The second login finds the account: the same hash, which the wrong password does not match in Dovecot.
    expect(out).toEqual([`PASSDB_RESULT_OK password=${stored}`, `PASSDB_RESULT_OK password=${stored}`]);
  });

  it("answers the userdb with the mailbox folder and the mail user, and lists every address", async () => {
    const { relay, script } = await setUp();
    const out = await runLua(script, [
      { userdb: `bob000001@${DOMAIN}` },
      { passdb: { user: `bob000001@${DOMAIN}`, password: "correct horse battery" } },
      { passdb: { user: `carol0001@${DOMAIN}`, password: "correct horse battery" } },
      { userdb: `bob000001@${DOMAIN}` },
      { iterate: true },
    ]);
    expect(out[0]).toBe("USERDB_RESULT_USER_UNKNOWN no such account");
    expect(out[3]).toBe(
      `USERDB_RESULT_OK gid=vmail home=${join(relay.config.mailboxesDir, `bob000001@${DOMAIN}`)} uid=vmail`,
    );
    expect(out[4].split(" ").slice(1).sort()).toEqual([`bob000001@${DOMAIN}`, `carol0001@${DOMAIN}`]);
  });

  it("sends the client's address, so the per-client creation limit applies to it alone", async () => {
    const { script } = await setUp({ account_creations_per_minute_per_client: "1" });
    const out = await runLua(script, [
      { passdb: { user: `dave00001@${DOMAIN}`, password: "correct horse battery", remote_ip: "192.0.2.1" } },
      { passdb: { user: `erin00001@${DOMAIN}`, password: "correct horse battery", remote_ip: "192.0.2.1" } },
      { passdb: { user: `frank0001@${DOMAIN}`, password: "correct horse battery", remote_ip: "192.0.2.2" } },
    ]);
    expect(out[0]).toMatch(/^PASSDB_RESULT_OK password=\{PBKDF2\}/);
    // doveauth fails a creation that must wait; Dovecot reports that as a temporary error.
    expect(out[1]).toBe("PASSDB_RESULT_INTERNAL_FAILURE doveauth failed the lookup (see its journal)");
    expect(out[2]).toMatch(/^PASSDB_RESULT_OK password=\{PBKDF2\}/);
  });

  it("asks again on a new connection when doveauth closed the kept one (a restart)", async () => {
    const { script, restart } = await setUp();
    const addr = `grace0001@${DOMAIN}`;
    const out = await runLua(
      script,
      [{ passdb: { user: addr, password: "correct horse battery" } }, { pause: true }, { userdb: addr }],
      restart,
    );
    expect(out[0]).toMatch(/^PASSDB_RESULT_OK password=\{PBKDF2\}/);
    expect(out[1]).toMatch(/^USERDB_RESULT_OK gid=vmail home=\S+grace0001@chat\.example\.org uid=vmail$/);
  });

  it("refuses foreign domains as unknown and reports a missing doveauth as an internal failure", async () => {
    const { script } = await setUp();
    expect(
      await runLua(script, [{ passdb: { user: "x@other.example", password: "correct horse battery" } }]),
    ).toEqual(["PASSDB_RESULT_USER_UNKNOWN no such account"]);
    const down = await setUp({}, false);
    const [line] = await runLua(down.script, [{ userdb: `bob000001@${DOMAIN}` }]);
    expect(line).toMatch(/^USERDB_RESULT_INTERNAL_FAILURE connect\(.*doveauth\.socket\): /);
  });
});
