// The DKIM private key in the plan. Without dkimPrivateKey a create-once step makes it on the server, and sets
// owner and mode also on a key that is there already (restored from a backup). With dkimPrivateKey the key is a
// secret file (opendkim, 0600) that restarts OpenDKIM when it changes, and there is no create-once step: both
// would run in the configure phase, where the step could make a second key before the file lands. The key never
// appears in a script, an id, a warning or a stdin that is not secret, and removing the option never removes
// the key from the server.
import { execFileSync, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { planRelay, type Plan } from "../../core/plan";
import { PATHS } from "../../core/plan/facts";
import { MANIFEST } from "../../core/plan/prune";
import { RUN_LOG } from "../../core/plan/steps";
import type { FileUnit, OnceUnit, PruneUnit, ServiceUnit } from "../../core/plan/types";
import { testAssets } from "./helpers";

const BASE = { mailDomain: "chat.example.org", tlsMode: "self-signed" };
const newKey = () =>
  generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs1", format: "pem" })
    .toString()
    .trim();
const KEY = newKey();
const OTHER_KEY = newKey();
const plan = (key?: string) =>
  planRelay(loadConfig({ ...BASE, ...(key ? { dkimPrivateKey: key } : {}) }), testAssets());
const generated = plan();
const given = plan(KEY);

const KEY_FILE = `file:${PATHS.dkimPrivateKey}`;
const unitOf = (p: Plan, id: string) => p.units.find((u) => u.id === id);
const stepOf = (p: Plan, id: string) => p.steps.find((s) => s.id === id);
const opendkim = (p: Plan) => unitOf(p, "service:opendkim.service") as ServiceUnit;
/** Lines of the key that would give it away: every base64 line. */
const keyLines = (key: string) => key.split("\n").filter((l) => !l.startsWith("-----"));

function changed(a: Plan, b: Plan): string[] {
  const old = new Map(a.steps.map((s) => [s.id, s.hash]));
  const now = new Map(b.steps.map((s) => [s.id, s.hash]));
  const ids = new Set([...old.keys(), ...now.keys()]);
  return [...ids].filter((id) => old.get(id) !== now.get(id)).sort();
}

describe("without dkimPrivateKey", () => {
  it("makes the key once on the server and owns it as server state", () => {
    const once = unitOf(generated, "once:dkim-key") as OnceUnit;
    expect(once.creates).toBe(PATHS.dkimPrivateKey);
    expect(once.after).toEqual([`dir:${PATHS.dkimKeyDir}`]);
    expect(unitOf(generated, KEY_FILE)).toBeUndefined();
    expect(opendkim(generated).restartOn).not.toContain(KEY_FILE);
    const owned = (generated.units.at(-1) as PruneUnit).owned;
    expect(owned).toContainEqual({ kind: "keep", path: PATHS.dkimPrivateKey });
  });
});

// The create-once step's script, run by sh with stand-ins for runuser (which makes the key, as opendkim-genkey
// does), chown and chmod, all recording their calls.
const dir = mkdtempSync(join(tmpdir(), "dkim-key-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let runs = 0;

function runOnce(keyThere: boolean): { calls: string[]; keyDir: string } {
  const run = join(dir, `once-${++runs}`);
  const keyDir = join(run, "dkimkeys");
  const bin = join(run, "bin");
  mkdirSync(keyDir, { recursive: true });
  mkdirSync(bin);
  if (keyThere) writeFileSync(join(keyDir, "opendkim.private"), "restored\n");
  const log = join(run, "calls");
  writeFileSync(log, "");
  const fake = (name: string, extra = "") =>
    writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >>${log}\n${extra}exit 0\n`);
  fake("runuser", `echo made >${keyDir}/opendkim.private\n`);
  fake("chown");
  fake("chmod");
  for (const f of ["runuser", "chown", "chmod"]) chmodSync(join(bin, f), 0o755);
  const script = stepOf(generated, "once:dkim-key")!
    .script.replaceAll(PATHS.dkimKeyDir, keyDir)
    .replaceAll("/var/lib/chatmail-deploy", run);
  execFileSync("sh", ["-c", script], { env: { PATH: `${bin}:/usr/bin:/bin` }, stdio: "pipe" });
  const calls = readFileSync(log, "utf8").trim().split("\n");
  return { calls: calls.map((c) => c.replaceAll(keyDir, PATHS.dkimKeyDir)), keyDir };
}

describe("the create-once step of the key", () => {
  const ownAndMode = [
    `chown opendkim:opendkim ${PATHS.dkimPrivateKey}`,
    `chmod 0600 ${PATHS.dkimPrivateKey}`,
  ];

  it("makes the key as user opendkim, then gives it to opendkim with mode 0600", () => {
    const { calls, keyDir } = runOnce(false);
    expect(calls).toEqual([
      `runuser -u opendkim -- /usr/sbin/opendkim-genkey -D ${PATHS.dkimKeyDir} -d chat.example.org -s opendkim`,
      ...ownAndMode,
    ]);
    expect(readFileSync(join(keyDir, "opendkim.private"), "utf8")).toBe("made\n");
  });

  it("keeps a key that is there (restored from a backup) and still sets its owner and mode", () => {
    const { calls, keyDir } = runOnce(true);
    expect(calls).toEqual(ownAndMode);
    expect(readFileSync(join(keyDir, "opendkim.private"), "utf8")).toBe("restored\n");
  });
});

describe("with dkimPrivateKey", () => {
  it("writes the key as a secret file of opendkim with mode 0600 after its folder, and makes none", () => {
    const file = unitOf(given, KEY_FILE) as FileUnit;
    expect(file).toMatchObject({
      path: PATHS.dkimPrivateKey,
      owner: "opendkim",
      group: "opendkim",
      mode: "0600",
      secret: true,
      content: `${KEY}\n`,
      after: [`dir:${PATHS.dkimKeyDir}`],
    });
    expect(unitOf(given, "once:dkim-key")).toBeUndefined();
    expect(given.steps.filter((s) => s.files.includes(PATHS.dkimPrivateKey)).map((s) => s.id)).toEqual([
      KEY_FILE,
    ]);
  });

  it("restarts OpenDKIM when the key changes, and re-runs nothing else", () => {
    expect(opendkim(given).restartOn).toContain(KEY_FILE);
    expect(changed(given, plan(OTHER_KEY))).toEqual([KEY_FILE, "service:opendkim.service"]);
  });

  it("replaces the create-once step by the file when set on a relay that made its key", () => {
    expect(changed(generated, given)).toEqual(
      ["once:dkim-key", KEY_FILE, "service:opendkim.service", "prune:unowned"].sort(),
    );
  });

  it("marks the file's step and the hashes computed from it secret", () => {
    const file = stepOf(given, KEY_FILE)!;
    expect([file.secret, file.secretHash]).toEqual([true, true]);
    const service = stepOf(given, "service:opendkim.service")!;
    expect([service.secret, service.secretHash]).toEqual([false, true]);
    expect(file.script).toContain('chown opendkim:opendkim "$tmp"');
    expect(file.script).toContain('chmod 0600 "$tmp"');
  });

  it("keeps the key out of every script, id, warning and stdin that is not secret", () => {
    const lines = keyLines(KEY);
    expect(lines.length).toBeGreaterThan(20);
    for (const step of given.steps) {
      for (const line of lines) {
        expect(step.script, step.id).not.toContain(line);
        expect(step.id).not.toContain(line);
        if (!step.secret) expect(step.stdin, step.id).not.toContain(line);
      }
    }
    expect(given.steps.filter((s) => lines.some((l) => s.stdin.includes(l))).map((s) => s.id)).toEqual([
      KEY_FILE,
    ]);
    expect(JSON.stringify(given.warnings)).not.toContain(lines[1]);
  });

  it("changes only steps flagged secretHash between two keys", () => {
    const other = new Map(plan(OTHER_KEY).steps.map((s) => [s.id, s]));
    for (const s of given.steps) {
      const o = other.get(s.id)!;
      expect(o.secretHash, s.id).toBe(s.secretHash);
      if (!s.secretHash) expect([o.script, o.stdin, o.hash], s.id).toEqual([s.script, s.stdin, s.hash]);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Removing the option: the prune step, run for real against a temporary root, keeps the key file that left the
// owned list.

describe("removing dkimPrivateKey", () => {
  it("leaves the key file on the server: the file entry leaves the owned list, the prune step keeps it", () => {
    const root = join(dir, "prune-root");
    const bin = join(dir, "prune-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "systemctl"), `#!/bin/sh\necho "$*" >>${dir}/prune-systemctl\nexit 0\n`);
    chmodSync(join(bin, "systemctl"), 0o755);
    const put = (path: string, content: string) => {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), content);
    };
    const pruneOf = (p: Plan) => p.steps.find((s) => s.kind === "prune")!;
    // The server as the deploy with the key left it: the key file, and the owned list naming it as a file.
    put(PATHS.dkimPrivateKey, `${KEY}\n`);
    put(MANIFEST, pruneOf(given).stdin);
    expect(pruneOf(given).stdin).toContain(`file ${PATHS.dkimPrivateKey}\n`);
    const after = pruneOf(generated);
    expect(after.stdin).not.toContain(`file ${PATHS.dkimPrivateKey}\n`);

    const script = after.script
      .replace(/^root=$/m, `root=${root}`)
      .split(RUN_LOG)
      .join(join(dir, "prune-runs.log"))
      .replace(`mkdir -p ${dirname(RUN_LOG)}\n`, `mkdir -p ${dir}\n`);
    const r = spawnSync("sh", ["-c", script], {
      input: after.stdin,
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`prune: left alone, server state: file ${PATHS.dkimPrivateKey}`);
    expect(readFileSync(join(root, PATHS.dkimPrivateKey), "utf8")).toBe(`${KEY}\n`);
    expect(readFileSync(join(root, MANIFEST), "utf8")).toBe(after.stdin);
    expect(existsSync(join(dir, "prune-systemctl"))).toBe(false);
  });
});
