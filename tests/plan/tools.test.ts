// The real programs accept the rendered files: postconf, doveconf, nginx -t, opendkim -n, unbound-checkconf,
// mtail --compile_only and systemd-analyze verify, each run on the files of a rendered plan in a temporary directory. CI installs the
// Debian packages (.ci/debian-packages); a missing program fails these tests.
//
// Adaptations, because a test machine is not a relay:
// - TLS: nginx and doveconf read the certificate files. Plans render with tlsMode external pointing at a
//   throw-away self-signed certificate; the acme plan gets its two certificate paths swapped for the same files.
// - opendkim: its config names /etc/opendkim/*.lua and /etc/dkimkeys/*, which are swapped for the temporary
//   tree, with a key made by opendkim-genkey there.
// - systemd: units are loaded from the temporary tree before the system's (SYSTEMD_UNIT_PATH), so our drop-ins
//   apply to the packages' units; binaries the plan itself downloads (iroh-relay) are absent and that one error
//   is expected.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Plan } from "../../core/plan";
import { PATHS, tlsPaths } from "../../core/plan/facts";
import { RUN_LOG } from "../../core/plan/steps";
import { configFor, planFor, text, writeTree, testCertificate } from "./helpers";

let dir: string;
let cert: string;
let key: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "plan-tools-"));
  ({ cert, key } = testCertificate(dir));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  if (r.error)
    throw new Error(`${cmd} could not run (${r.error.message}); install it (see .ci/debian-packages)`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let trees = 0;
/** Writes the plan's files under a new directory and returns it. */
function tree(plan: Plan): string {
  const root = join(dir, `root${trees++}`);
  writeTree(plan, root);
  return root;
}

const external = () => ({ tls_external_cert_and_key: `${cert} ${key}` });

/** Variants of the relay that change the files under test. */
const VARIANTS: [string, Record<string, string>][] = [
  ["defaults", {}],
  [
    "ipv4 only, external iroh, compression",
    { disable_ipv6: "true", iroh_relay: "https://iroh.example.net", imap_compress: "true" },
  ],
  [
    "raw logs, metrics, invites",
    {
      imap_rawlog: "true",
      mtail_address: "127.0.0.1",
      invite_token: "sentinelToken123",
      privacy_mail: "privacy@example.org",
    },
  ],
];

/** The acme plan with its certificate paths pointed at the test certificate. */
function acmeWithTestCertificate(path: string, ini: Record<string, string> = {}): string {
  const acme = tlsPaths(configFor(ini));
  return text(planFor(ini), path).split(acme.cert).join(cert).split(acme.key).join(key);
}

describe("postconf", () => {
  it.each(VARIANTS)("accepts main.cf and master.cf without a warning (%s)", (_, ini) => {
    const root = tree(planFor({ ...ini, ...external() }));
    for (const flag of ["-n", "-M", "-P"]) {
      const r = run("postconf", ["-c", join(root, "etc/postfix"), flag]);
      expect(r.stderr, `postconf ${flag}`).toBe("");
      expect(r.status).toBe(0);
    }
    const n = run("postconf", ["-c", join(root, "etc/postfix"), "-h", "message_size_limit"]);
    expect(n.stdout.trim()).toBe(String(configFor(ini).maxMessageSize));
  });
});

describe("doveconf", () => {
  it.each(VARIANTS)("accepts dovecot.conf (%s)", (_, ini) => {
    const root = tree(planFor({ ...ini, ...external() }));
    const r = run("doveconf", ["-c", join(root, "etc/dovecot/dovecot.conf"), "-n"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("INDEX=MEMORY");
  });

  it("accepts the acme variant with its certificate paths", () => {
    const file = join(dir, "dovecot-acme.conf");
    writeFileSync(file, acmeWithTestCertificate("/etc/dovecot/dovecot.conf"));
    const r = run("doveconf", ["-c", file, "-n"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("names only mail plugins that Debian's dovecot packages ship", () => {
    const conf = text(planFor({ imap_compress: "true" }), "/etc/dovecot/dovecot.conf");
    const plugins = new Set(
      [...conf.matchAll(/^\s*mail_plugins = (.*)$/gm)]
        .flatMap((m) => m[1].split(/\s+/))
        .filter((p) => p && !p.startsWith("$")),
    );
    expect(plugins.size).toBeGreaterThan(5);
    const modules = readdirSync("/usr/lib/dovecot/modules");
    for (const plugin of plugins) {
      expect(
        modules.some((m) => new RegExp(`^lib\\d+_${plugin}_plugin\\.so$`).test(m)),
        plugin,
      ).toBe(true);
    }
  });
});

describe("nginx -t", () => {
  const check = (conf: string) => {
    const r = run("nginx", ["-t", "-c", conf]);
    expect(r.stderr).toContain("test is successful");
    expect(r.stderr).not.toMatch(/\[(warn|emerg|alert)\]/);
    expect(r.status).toBe(0);
  };

  it.each(VARIANTS)("accepts nginx.conf (%s)", (_, ini) => {
    check(join(tree(planFor({ ...ini, ...external() })), "etc/nginx/nginx.conf"));
  });

  it("accepts the acme variant with the challenge proxy", () => {
    const file = join(dir, "nginx-acme.conf");
    writeFileSync(file, acmeWithTestCertificate("/etc/nginx/nginx.conf"));
    check(file);
  });
});

describe("opendkim -n", () => {
  it("accepts opendkim.conf, its tables and Lua policy scripts", () => {
    const root = tree(planFor());
    execFileSync("opendkim-genkey", [
      "-D",
      join(root, "etc/dkimkeys"),
      "-d",
      "chat.example.org",
      "-s",
      "opendkim",
    ]);
    const conf = text(planFor(), "/etc/opendkim.conf")
      .split("/etc/opendkim/")
      .join(join(root, "etc/opendkim/"))
      .split("/etc/dkimkeys/")
      .join(join(root, "etc/dkimkeys/"));
    const file = join(root, "opendkim-test.conf");
    writeFileSync(file, conf);
    const r = run("opendkim", ["-n", "-x", file]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("unbound-checkconf", () => {
  it.each([
    ["defaults", {}],
    ["forwarders, ipv4 only", { resolver_forwarders: "192.0.2.53 2001:db8::53", disable_ipv6: "true" }],
  ] as [string, Record<string, string>][])("accepts chatmail.conf (%s)", (_, ini) => {
    const root = tree(planFor(ini));
    const r = run("unbound-checkconf", [join(root, "etc/unbound/unbound.conf.d/chatmail.conf")]);
    expect(r.stdout).toContain("no errors");
    expect(r.status).toBe(0);
  });
});

describe("mtail --compile_only", () => {
  it("compiles the metrics program", () => {
    const root = tree(planFor({ mtail_address: "127.0.0.1" }));
    const r = run("mtail", ["--compile_only", "--progs", join(root, "etc/mtail"), "--logtostderr"]);
    expect(r.stderr).not.toMatch(/compile failed|error/i);
    expect(r.status).toBe(0);
  });
});

describe("systemd-analyze verify", () => {
  it.each([
    ["acme, metrics", { mtail_address: "127.0.0.1" }],
    ["external certificate", { tls_external_cert_and_key: "/etc/ssl/relay.pem /etc/ssl/relay.key" }],
  ] as [string, Record<string, string>][])("accepts every unit and drop-in (%s)", (_, ini) => {
    const root = tree(planFor(ini));
    const unitDir = join(root, "etc/systemd/system");
    const own = readdirSync(unitDir).filter((n) => /\.(service|timer|path)$/.test(n));
    // Drop-ins are checked on the packages' units they extend (installed with the packages).
    const extended = readdirSync(unitDir)
      .filter((n) => n.endsWith(".d"))
      .map((n) => n.slice(0, -2).replace(/@\.service$/, "@-.service"));
    for (const name of extended)
      expect(existsSync(join("/lib/systemd/system", name.replace("@-", "@"))), name).toBe(true);
    const r = run("systemd-analyze", ["verify", ...own, ...extended], { SYSTEMD_UNIT_PATH: `${unitDir}:` });
    const problems = r.stderr
      .split("\n")
      .filter((l) => l.trim() !== "")
      .filter(
        (l) => !/^iroh-relay\.service: Command \/usr\/local\/bin\/iroh-relay is not executable/.test(l),
      );
    expect(problems).toEqual([]);
  });
});

describe("systemd-tmpfiles", () => {
  it("makes the ACME challenge directory from the relay's tmpfiles.d entry", () => {
    const root = tree(planFor());
    const r = run("systemd-tmpfiles", [
      "--root",
      root,
      "--create",
      join(root, "etc/tmpfiles.d/chatmail-acme.conf"),
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(existsSync(join(root, PATHS.acmeChallengeDir))).toBe(true);
  });
});

describe("pre-restart checks of the plan", () => {
  /** Runs the plan's own check step with the tool pointed at the temporary tree (and the run log moved there). */
  const runCheck = (plan: Plan, id: string, pointAtTree: (script: string) => string) => {
    const step = plan.steps.find((s) => s.id === id)!;
    const script = pointAtTree(step.script)
      .split(RUN_LOG)
      .join(join(dir, "runs.log"))
      .split("/var/lib/chatmail-deploy")
      .join(dir);
    return spawnSync("sh", ["-c", script], { encoding: "utf8" });
  };

  it("postfix: passes the rendered files and refuses a misspelt setting with postconf's message", () => {
    const plan = planFor(external());
    const root = tree(plan);
    const atTree = (s: string) => s.split("postconf ").join(`postconf -c ${join(root, "etc/postfix")} `);
    expect(runCheck(plan, "check:postfix-config", atTree).status).toBe(0);
    writeFileSync(
      join(root, "etc/postfix/main.cf"),
      text(plan, "/etc/postfix/main.cf") + "mesage_size_limit = 1\n",
    );
    const r = runCheck(plan, "check:postfix-config", atTree);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      "postfix: its configuration was refused; postfix keeps running with the previous one:",
    );
    expect(r.stderr).toContain("unused parameter: mesage_size_limit=1");
  });

  it("dovecot: refuses an unknown setting", () => {
    const plan = planFor(external());
    const root = tree(plan);
    const conf = join(root, "etc/dovecot/dovecot.conf");
    const atTree = (s: string) => s.split("doveconf -n").join(`doveconf -c ${conf} -n`);
    expect(runCheck(plan, "check:dovecot-config", atTree).status).toBe(0);
    writeFileSync(
      conf,
      text(plan, "/etc/dovecot/dovecot.conf").replace("mail_uid = vmail", "mail_uidd = vmail"),
    );
    const r = runCheck(plan, "check:dovecot-config", atTree);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Unknown setting: mail_uidd");
  });

  it("runs again whenever a checked file changes", () => {
    const hash = (ini: Record<string, string>) =>
      planFor(ini).steps.find((s) => s.id === "check:nginx-config")!.hash;
    expect(hash({})).toBe(hash({}));
    expect(hash({ new_account_port: "12090" })).not.toBe(hash({}));
    expect(hash({ max_message_size: "1048576" })).toBe(hash({}));
  });
});
