// The prune unit: the owned list follows the config, its hash follows the owned list only, and its script,
// run for real with sh against a temporary root (a fake systemctl on PATH records the calls), removes exactly
// what left the list plus cmdeploy's leftovers and never the server's state.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { CMDEPLOY_LEFTOVERS, isKept, MANIFEST } from "../../core/plan/prune";
import { RUN_LOG } from "../../core/plan/steps";
import type { OwnedEntry, Plan, PruneUnit, Step } from "../../core/plan/types";
import { DOMAIN, fileUnits, planFor } from "./helpers";

const INVITES = PATHS.invitesDir;
const MAILBOXES = `/home/vmail/mail/${DOMAIN}`;

/** Configs that switch every part that owns something optional on or off. */
const CONFIGS: Record<string, Record<string, string>> = {
  defaults: {},
  "one token": { invite_token: "abcdefghijk" },
  "another token": { invite_token: "zyxwvutsrqp" },
  "two tokens": { invite_token: "abcdefghijk lmnopqrstuv" },
  mtail: { mtail_address: "127.0.0.1" },
  "external iroh": { iroh_relay: "https://iroh.example.net" },
  "self-signed": { tls_mode: "self-signed" },
  "external certificate": { tls_external_cert_and_key: "/etc/ssl/relay.pem /etc/ssl/relay.key" },
  "other mailboxes": { mailboxes_dir: "/srv/mail" },
  "send rate": { max_user_send_per_minute: "30" },
};

const pruneUnit = (plan: Plan) => plan.units.find((u): u is PruneUnit => u.kind === "prune")!;
const pruneStep = (plan: Plan) => plan.steps.find((s) => s.kind === "prune")!;
const owned = (plan: Plan) => pruneUnit(plan).owned.map((e) => `${e.kind} ${e.path}`);
const withKind = (plan: Plan, kind: OwnedEntry["kind"]) =>
  pruneUnit(plan)
    .owned.filter((e) => e.kind === kind)
    .map((e) => e.path);

describe("the owned list", () => {
  it.each(Object.entries(CONFIGS))(
    "lists every file, binary and unit file the plan writes (%s)",
    (_, ini) => {
      const plan = planFor(ini);
      const files = withKind(plan, "file");
      for (const u of plan.units) {
        if (u.kind === "file" || u.kind === "download") expect(files, u.id).toContain(u.path);
        if (u.kind === "sysctl") expect(files, u.id).toContain(`/etc/sysctl.d/90-chatmail-${u.key}.conf`);
      }
      // Units of the plan: the files it writes and the ones it runs or enables, never a stopped one.
      const units = withKind(plan, "unit");
      expect(units).toEqual(
        expect.arrayContaining(["chatmaild.service", "chatmail-expire.timer", "nginx.service"]),
      );
      expect(units).not.toContain("doveauth.service");
      // Sorted and unique, and that is the step's stdin byte for byte.
      const lines = owned(plan);
      expect([...new Set(lines)].sort()).toEqual(lines);
      expect(pruneStep(plan).stdin).toBe(lines.map((l) => `${l}\n`).join(""));
    },
  );

  it("names each printable invite and the invite folder, which holds nothing else", () => {
    expect(owned(planFor()).filter((l) => l.includes(INVITES))).toEqual([]);
    const plan = planFor(CONFIGS["two tokens"]);
    // The files the website part writes for the tokens, each by its exact path.
    const written = fileUnits(plan)
      .filter((f) => f.path.startsWith(`${INVITES}/`))
      .map((f) => `file ${f.path}`);
    expect(written).toHaveLength(4);
    expect(owned(plan).filter((l) => l.includes(INVITES))).toEqual([...written, `tree ${INVITES}`]);
  });

  it("has mtail's program, unit file and unit only while mtailAddress is set", () => {
    const mtail = [
      "file /etc/mtail/chatmail.mtail",
      "file /etc/systemd/system/mtail.service",
      "unit mtail.service",
    ];
    expect(owned(planFor(CONFIGS.mtail))).toEqual(expect.arrayContaining(mtail));
    for (const line of mtail) expect(owned(planFor())).not.toContain(line);
  });

  it("has the relay's own iroh-relay only while irohRelay is unset", () => {
    const iroh = [
      `file ${PATHS.irohRelayBinary}`,
      "file /etc/iroh-relay.toml",
      "file /etc/systemd/system/iroh-relay.service",
      "unit iroh-relay.service",
    ];
    expect(owned(planFor())).toEqual(expect.arrayContaining(iroh));
    for (const line of iroh) expect(owned(planFor(CONFIGS["external iroh"]))).not.toContain(line);
  });

  it("keeps the mailboxes, the DKIM key and the ACME state, and never lists them for removal", () => {
    for (const ini of [{}, CONFIGS["other mailboxes"], CONFIGS["self-signed"]]) {
      const plan = planFor(ini);
      const keep = withKind(plan, "keep");
      const mailboxes = "mailboxes_dir" in ini ? "/srv/mail" : MAILBOXES;
      expect(keep).toEqual(
        expect.arrayContaining([
          mailboxes,
          "/home/vmail",
          PATHS.dkimKeyDir,
          PATHS.dkimPrivateKey,
          "/var/lib/acme/live",
        ]),
      );
      for (const kind of ["dir", "tree"] as const) {
        for (const path of withKind(plan, kind)) expect(isKept(path, keep), path).toBe(false);
      }
    }
  });
});

describe("the prune step's hash", () => {
  const plans = Object.fromEntries(Object.entries(CONFIGS).map(([name, ini]) => [name, planFor(ini)]));

  it("changes exactly when the owned list changes", () => {
    for (const a of Object.values(plans)) {
      for (const b of Object.values(plans)) {
        const sameList = pruneStep(a).stdin === pruneStep(b).stdin;
        expect(pruneStep(a).hash === pruneStep(b).hash).toBe(sameList);
      }
    }
  });

  it("stays for a changed setting or token value, and changes when a token or mtail is added", () => {
    const hash = (name: string) => pruneStep(plans[name]).hash;
    expect(hash("send rate")).toBe(hash("defaults"));
    expect(hash("another token")).toBe(hash("one token"));
    expect(hash("one token")).not.toBe(hash("defaults"));
    expect(hash("two tokens")).not.toBe(hash("one token"));
    expect(hash("mtail")).not.toBe(hash("defaults"));
    expect(pruneStep(planFor()).hash).toBe(hash("defaults"));
  });

  it("runs last, after every other step, and is never secret", () => {
    const plan = plans["one token"];
    const step = pruneStep(plan);
    expect(plan.steps.at(-1)).toBe(step);
    expect(step.dependsOn).toEqual(plan.steps.filter((s) => s.phase === "activate").map((s) => s.id));
    expect([step.secret, step.secretHash]).toEqual([false, false]);
    expect(step.files).toEqual([MANIFEST]);
  });
});

describe("cmdeploy's leftovers", () => {
  const leftoverPaths = CMDEPLOY_LEFTOVERS.map((l) => l.entry.path);

  it("are its Python daemon units, cron files and virtualenv, each with a reason", () => {
    for (const name of [
      "doveauth",
      "filtermail",
      "filtermail-incoming",
      "chatmail-metadata",
      "lastlogin",
      "echobot",
    ]) {
      expect(leftoverPaths).toContain(`/etc/systemd/system/${name}.service`);
    }
    for (const cron of ["chatmail-metrics", "expunge", "acmetool"])
      expect(leftoverPaths).toContain(`/etc/cron.d/${cron}`);
    expect(CMDEPLOY_LEFTOVERS).toContainEqual(
      expect.objectContaining({ entry: { kind: "tree", path: "/usr/local/lib/chatmaild/venv" } }),
    );
    for (const l of CMDEPLOY_LEFTOVERS) expect(l.reason.length, l.entry.path).toBeGreaterThan(20);
  });

  it("take cmdeploy's mtail.service only while the plan has no mtail of its own", () => {
    const unit = "/etc/systemd/system/mtail.service";
    const gone = (ini: Record<string, string>) => pruneUnit(planFor(ini)).leftovers.map((l) => l.entry.path);
    expect(gone(CONFIGS.defaults)).toContain(unit);
    expect(gone(CONFIGS.mtail)).not.toContain(unit);
  });

  it.each(Object.entries(CONFIGS))(
    "never include a unit name or a path the plan uses, nor state (%s)",
    (_, ini) => {
      const plan = planFor(ini);
      const own = new Set(owned(plan));
      const keep = withKind(plan, "keep");
      for (const unit of ["iroh-relay.service", "acmetool-redirector.service", "chatmaild.service"])
        expect(leftoverPaths).not.toContain(`/etc/systemd/system/${unit}`);
      for (const l of pruneUnit(plan).leftovers) {
        expect(own.has(`${l.entry.kind} ${l.entry.path}`), l.entry.path).toBe(false);
        expect(isKept(l.entry.path, keep), l.entry.path).toBe(false);
      }
      // The reasons are in the script, for `pulumi preview --diff`.
      expect(pruneStep(plan).script).toContain("# What a relay deployed by cmdeploy leaves");
    },
  );
});

// ---------------------------------------------------------------------------------------------------------
// The script, for real.

const work = mkdtempSync(join(tmpdir(), "plan-prune-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let runs = 0;

interface Server {
  readonly root: string;
  readonly dir: string;
}

function server(): Server {
  const dir = join(work, `server-${++runs}`);
  const root = join(dir, "root");
  mkdirSync(root, { recursive: true });
  mkdirSync(join(dir, "bin"));
  // Records its calls; `daemon-reload` fails when the test asks for it.
  const systemctl = join(dir, "bin", "systemctl");
  writeFileSync(
    systemctl,
    `#!/bin/sh\necho "$*" >>${dir}/systemctl.log\n[ "$1" = daemon-reload ] && [ -e ${dir}/fail-reload ] && exit 1\nexit 0\n`,
  );
  chmodSync(systemctl, 0o755);
  return { root, dir };
}

const put = (s: Server, path: string, content = "x\n") => {
  mkdirSync(dirname(join(s.root, path)), { recursive: true });
  writeFileSync(join(s.root, path), content);
};

/** Every file and directory below the root, as server paths (directories end in /). */
function listing(s: Server): string[] {
  const walk = (rel: string): string[] =>
    readdirSync(join(s.root, rel), { withFileTypes: true }).flatMap((d) => {
      const path = `${rel}/${d.name}`;
      return d.isDirectory() ? [`${path}/`, ...walk(path)] : [path];
    });
  return walk("").sort();
}

const systemctlCalls = (s: Server) =>
  existsSync(join(s.dir, "systemctl.log"))
    ? readFileSync(join(s.dir, "systemctl.log"), "utf8").trimEnd().split("\n")
    : [];

/** Runs the plan's prune step as the remote command would, with every server path below the test's root. */
function runPrune(s: Server, step: Step) {
  expect(step.script.match(/^root=$/gm)).toHaveLength(1);
  const script = step.script
    .replace(/^root=$/m, `root=${s.root}`)
    .split(RUN_LOG)
    .join(join(s.dir, "runs.log"))
    .replace(`mkdir -p ${dirname(RUN_LOG)}\n`, `mkdir -p ${s.dir}\n`);
  // Nothing but the temporary root may be named by a path the script writes to.
  expect(script).not.toMatch(/^mkdir -p \/var/m);
  const r = spawnSync("sh", ["-c", script], {
    input: step.stdin,
    encoding: "utf8",
    env: { ...process.env, PATH: `${join(s.dir, "bin")}:${process.env.PATH}` },
  });
  return r;
}

/** What a deploy of `plan` leaves: its files, binaries and directories, as the prune step's list names them. */
function deployed(s: Server, plan: Plan): void {
  const contents = new Map(fileUnits(plan).map((f) => [f.path, f.content]));
  for (const e of pruneUnit(plan).owned) {
    if (e.kind === "file") {
      mkdirSync(dirname(join(s.root, e.path)), { recursive: true });
      writeFileSync(join(s.root, e.path), contents.get(e.path) ?? "binary\n");
    }
    if (e.kind === "dir" || e.kind === "tree") mkdirSync(join(s.root, e.path), { recursive: true });
  }
}

/** Server state the prune step must never touch. */
function state(s: Server): void {
  put(s, `${MAILBOXES}/alice@${DOMAIN}/password`, "{SHA512-CRYPT}$6$x\n");
  put(s, `${MAILBOXES}/alice@${DOMAIN}/cur/1.eml`);
  put(s, PATHS.dkimPrivateKey, "-----BEGIN PRIVATE KEY-----\n");
  put(s, `/var/lib/acme/live/${DOMAIN}/privkey`);
  put(s, "/var/lib/acme/accounts/acme-v02/account");
  put(s, "/var/lib/echobot/state.db");
}

const manifest = (s: Server) => readFileSync(join(s.root, MANIFEST), "utf8");

describe("the prune script", () => {
  it("removes nothing on a fresh server and writes the owned list there", () => {
    const s = server();
    const step = pruneStep(planFor());
    const r = runPrune(s, step);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("");
    expect(systemctlCalls(s)).toEqual([]);
    expect(listing(s)).toEqual(["/var/", "/var/lib/", "/var/lib/chatmail-deploy/", MANIFEST]);
    expect(manifest(s)).toBe(step.stdin);
    expect(readFileSync(join(s.dir, "runs.log"), "utf8")).toMatch(
      new RegExp(`^\\S+Z prune:unowned ${step.hash}\\n$`),
    );
  });

  it("removes cmdeploy's leftovers on the first deploy, but not its units of names the plan uses, nor state", () => {
    const s = server();
    const plan = planFor();
    state(s);
    deployed(s, plan);
    const python = [
      "doveauth",
      "filtermail",
      "filtermail-incoming",
      "chatmail-metadata",
      "lastlogin",
      "echobot",
    ];
    for (const name of python) put(s, `/etc/systemd/system/${name}.service`);
    put(s, "/etc/systemd/system/multi-user.target.wants/doveauth.service");
    for (const cron of ["chatmail-metrics", "expunge", "acmetool"]) put(s, `/etc/cron.d/${cron}`);
    put(s, "/etc/cron.d/e2scrub_all");
    put(s, "/usr/local/lib/chatmaild/venv/bin/python3");
    put(s, "/usr/local/lib/chatmaild/venv/lib/python3.11/site-packages/chatmaild/__init__.py");
    put(s, "/usr/local/lib/chatmaild/dist/chatmaild-0.2.tar.gz");
    put(s, "/etc/mtail/delivered_mail.mtail");
    const before = listing(s);

    const r = runPrune(s, pruneStep(plan));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const removed = [
      ...python.map((n) => `/etc/systemd/system/${n}.service`),
      ...["chatmail-metrics", "expunge", "acmetool"].map((c) => `/etc/cron.d/${c}`),
      "/etc/mtail/delivered_mail.mtail",
    ];
    const trees = ["/usr/local/lib/chatmaild/venv/", "/usr/local/lib/chatmaild/dist/"];
    const expected = before.filter((p) => !removed.includes(p) && !trees.some((t) => p.startsWith(t)));
    expect(listing(s)).toEqual([...expected, `${dirname(MANIFEST)}/`, MANIFEST].sort());
    // The plan's own chatmail.ini and bundle next to the virtualenv stay; so do the mailboxes and keys.
    expect(listing(s)).toContain(PATHS.chatmailIni);
    expect(listing(s)).toContain(`${MAILBOXES}/alice@${DOMAIN}/password`);
    // Each unit stopped and disabled before its file went, then one daemon-reload.
    expect(systemctlCalls(s)).toEqual([
      ...python.map((n) => `disable --now ${n}.service`).sort(),
      "daemon-reload",
    ]);
  });

  it("removes exactly what left the owned list and keeps the rest", () => {
    const s = server();
    // Before: own iroh-relay, mtail, two invite tokens. After: an external iroh relay, no mtail, no tokens.
    const before = planFor({ invite_token: "abcdefghijk lmnopqrstuv", mtail_address: "127.0.0.1" });
    const after = planFor({ iroh_relay: "https://iroh.example.net" });
    state(s);
    deployed(s, before);
    expect(runPrune(s, pruneStep(before)).status).toBe(0);
    expect(manifest(s)).toBe(pruneStep(before).stdin);
    expect(systemctlCalls(s)).toEqual([]);
    // Files the plan never listed: Debian's mtail README, an invite from before the list existed.
    put(s, "/etc/mtail/README");
    put(s, `${INVITES}/invite-9.txt`);
    deployed(s, after);
    const present = listing(s);

    const r = runPrune(s, pruneStep(after));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const gone = [
      "/etc/mtail/chatmail.mtail",
      "/etc/systemd/system/mtail.service",
      "/etc/iroh-relay.toml",
      "/etc/systemd/system/iroh-relay.service",
      PATHS.irohRelayBinary,
    ];
    expect(listing(s)).toEqual(present.filter((p) => !gone.includes(p) && !p.startsWith(`${INVITES}/`)));
    expect(existsSync(join(s.root, "/etc/mtail/README"))).toBe(true);
    for (const f of fileUnits(after)) expect(existsSync(join(s.root, f.path)), f.path).toBe(true);
    expect(systemctlCalls(s)).toEqual([
      "disable --now iroh-relay.service",
      "disable --now mtail.service",
      "daemon-reload",
    ]);
    expect(r.stdout.split("\n")).toEqual(
      expect.arrayContaining(["removed file /etc/systemd/system/mtail.service", `removed tree ${INVITES}`]),
    );
    expect(manifest(s)).toBe(pruneStep(after).stdin);

    // The same list again (a re-run after a failure later in the deploy): nothing more goes.
    const again = listing(s);
    expect(runPrune(s, pruneStep(after)).status).toBe(0);
    expect(listing(s)).toEqual(again);
    expect(systemctlCalls(s)).toHaveLength(3);
  });

  it("never removes state, even when an earlier list names it, nor a path that is not plain", () => {
    const s = server();
    state(s);
    put(s, "/srv/mail/bob/password");
    put(s, "/etc/passwd");
    put(s, "/etc/ssl/private/mailserver.key");
    // A list from an earlier deploy whose mailboxes lived in /srv/mail, tampered with on top.
    put(
      s,
      MANIFEST,
      [
        "keep /srv/mail",
        "tree /srv/mail",
        "tree /srv",
        `tree ${MAILBOXES}`,
        `file ${PATHS.dkimPrivateKey}`,
        "tree /var/lib/acme",
        `file /var/lib/acme/live/${DOMAIN}/privkey`,
        "dir /home",
        "file /etc/../etc/passwd",
        "file etc/passwd",
        "file /etc/ssl/private/mailserver.key",
      ].join("\n") + "\n",
    );
    const before = listing(s);
    const r = runPrune(s, pruneStep(planFor()));
    expect(r.status).toBe(0);
    expect(listing(s)).toEqual(before);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("prune: left alone, server state: tree /srv/mail");
    expect(r.stderr).toContain("prune: left alone, not a plain absolute path: file /etc/../etc/passwd");
    expect(systemctlCalls(s)).toEqual([]);
  });

  it("removes a directory only when empty, deepest first", () => {
    const s = server();
    put(s, MANIFEST, "dir /etc/a\ndir /etc/a/b\ndir /etc/full\n");
    mkdirSync(join(s.root, "/etc/a/b"), { recursive: true });
    put(s, "/etc/full/operator-notes.txt");
    const r = runPrune(s, pruneStep(planFor()));
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("removed dir /etc/a/b\nremoved dir /etc/a\n");
    expect(existsSync(join(s.root, "/etc/a"))).toBe(false);
    expect(existsSync(join(s.root, "/etc/full/operator-notes.txt"))).toBe(true);
  });

  it("keeps a unit running that the plan still runs when only its unit file leaves the list", () => {
    const s = server();
    put(s, MANIFEST, "file /etc/systemd/system/nginx.service\nunit nginx.service\n");
    put(s, "/etc/systemd/system/nginx.service");
    const r = runPrune(s, pruneStep(planFor()));
    expect(r.status).toBe(0);
    expect(existsSync(join(s.root, "/etc/systemd/system/nginx.service"))).toBe(false);
    expect(systemctlCalls(s)).toEqual(["daemon-reload"]);
  });

  it("keeps the previous list after a failure, so that the next run removes the rest", () => {
    const s = server();
    const old = "file /etc/systemd/system/old.service\n";
    put(s, MANIFEST, old);
    put(s, "/etc/systemd/system/old.service");
    writeFileSync(join(s.dir, "fail-reload"), "");
    const r = runPrune(s, pruneStep(planFor()));
    expect(r.status).not.toBe(0);
    expect(manifest(s)).toBe(old);
    // No temporary list is left behind, then or after the successful retry.
    rmSync(join(s.dir, "fail-reload"));
    expect(runPrune(s, pruneStep(planFor())).status).toBe(0);
    expect(readdirSync(join(s.root, dirname(MANIFEST)))).toEqual(["owned"]);
    expect(manifest(s)).toBe(pruneStep(planFor()).stdin);
  });
});
