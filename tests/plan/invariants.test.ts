// Properties every relay plan has, whatever the config: unique paths and ids, restart triggers that name the
// service's own files, byte-identical output for the same input, and secrets only where they are marked secret.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { planRelay } from "../../core/plan";
import { PATHS } from "../../core/plan/facts";
import type { Unit } from "../../core/plan/types";
import { configFor, fileUnits, planFor, testAssets, unit } from "./helpers";

const TOKEN = "sentinelToken123";

/** A few configs that switch every optional part on or off. */
const CONFIGS: Record<string, string>[] = [
  {},
  { invite_token: `${TOKEN} otherToken456`, mtail_address: "127.0.0.1", imap_rawlog: "true" },
  {
    tls_external_cert_and_key: "/etc/ssl/relay.pem /etc/ssl/relay.key",
    iroh_relay: "https://iroh.example.net",
  },
  { tls_mode: "self-signed", disable_ipv6: "true", imap_compress: "true", resolver_forwarders: "192.0.2.53" },
];

const arbitraryIni = fc.record(
  {
    max_message_size: fc.integer({ min: 1024, max: 100_000_000 }).map(String),
    max_mailbox_size: fc.constantFrom("100M", "500M", "2G"),
    new_account_port: fc.integer({ min: 20000, max: 20999 }).map(String),
    filtermail_smtp_port: fc.integer({ min: 21000, max: 21999 }).map(String),
    disable_ipv6: fc.boolean().map(String),
    tls_mode: fc.constantFrom("acme", "self-signed"),
    invite_token: fc.stringMatching(/^[A-Za-z0-9]{9,20}$/),
  },
  { requiredKeys: [] },
);

describe("planRelay", () => {
  it.each(CONFIGS.map((c, i) => [i, c] as const))("writes every path once (config %i)", (_, ini) => {
    const plan = planFor(ini);
    const paths = plan.steps.flatMap((s) => s.files);
    expect(paths.length).toBeGreaterThan(40);
    expect(new Set(paths).size).toBe(paths.length);
  });

  it.each(CONFIGS.map((c, i) => [i, c] as const))(
    "restarts or reloads a service only on files and binaries of the plan (config %i)",
    (_, ini) => {
      const plan = planFor(ini);
      const byId = new Map(plan.units.map((u) => [u.id, u]));
      for (const u of plan.units) {
        if (u.kind !== "service") continue;
        for (const trigger of [...u.restartOn, ...u.reloadOn]) {
          expect(["file", "download"], `${u.id} -> ${trigger}`).toContain(byId.get(trigger)?.kind);
        }
      }
    },
  );

  it("restarts each service exactly on its own files", () => {
    const plan = planFor({ mtail_address: "127.0.0.1" });
    const triggers = (id: string) => (unit(plan, id) as Extract<Unit, { kind: "service" }>).restartOn;
    expect(triggers("service:dovecot.service")).toEqual([
      "file:/etc/dovecot/dovecot.conf",
      "file:/etc/dovecot/auth.conf",
      "file:/etc/dovecot/push_notification.lua",
      "file:/etc/systemd/system/dovecot.service.d/10-chatmail.conf",
    ]);
    expect(triggers("service:nginx.service")).toEqual(["file:/etc/nginx/nginx.conf"]);
    expect(triggers("service:iroh-relay.service")).toEqual([
      `download:${PATHS.irohRelayBinary}`,
      "file:/etc/iroh-relay.toml",
      "file:/etc/systemd/system/iroh-relay.service",
    ]);
    expect(triggers("service:chatmaild.service")).toEqual([
      `file:${PATHS.daemonBundle}`,
      "file:/etc/systemd/system/chatmaild.service",
      `file:${PATHS.chatmailIni}`,
      // The services and certificate the metrics report on (metricsAddress is on by default).
      `file:${PATHS.metricsFacts}`,
    ]);
    expect(triggers("service:mtail.service")).toEqual([
      "file:/etc/mtail/chatmail.mtail",
      "file:/etc/systemd/system/mtail.service",
    ]);
  });

  it("starts dovecot before postfix and every TLS service after the certificate", () => {
    for (const ini of CONFIGS) {
      const plan = planFor(ini);
      const after = (id: string) => plan.steps.find((s) => s.id === id)!.dependsOn;
      expect(after("service:postfix.service")).toContain("service:dovecot.service");
      const config = configFor(ini);
      for (const id of ["service:dovecot.service", "service:postfix.service", "service:nginx.service"]) {
        if (config.tlsMode === "acme") expect(after(id)).toContain("service:acmetool.service");
        // The other modes make or check the certificate in earlier phases, which every service waits for.
        if (config.tlsMode === "self-signed") expect(after(id)).toContain("once:self-signed-certificate");
      }
    }
  });

  it("gives byte-identical steps for the same config", () => {
    fc.assert(
      fc.property(arbitraryIni, (ini) => {
        const a = planFor(ini);
        const b = planRelay(configFor(ini), testAssets());
        expect(b.steps.map((s) => s.hash)).toEqual(a.steps.map((s) => s.hash));
        expect(JSON.stringify(b.steps)).toBe(JSON.stringify(a.steps));
      }),
      { numRuns: 8 },
    );
  });

  it("changes the hash of exactly the files a setting lands in", () => {
    const a = planFor();
    const b = planFor({ max_message_size: "1048576" });
    const changed = a.steps.filter((s, i) => s.hash !== b.steps[i].hash).map((s) => s.id);
    expect(changed).toEqual(
      expect.arrayContaining([
        "file:/etc/postfix/main.cf",
        "file:/etc/dovecot/dovecot.conf",
        `file:${PATHS.chatmailIni}`,
        "service:postfix.service",
        "service:dovecot.service",
        "service:chatmaild.service",
      ]),
    );
    expect(changed).not.toContain("file:/etc/nginx/nginx.conf");
    expect(changed).not.toContain("service:nginx.service");
  });

  it("keeps invite tokens out of every file, script and id that is not marked secret", () => {
    const plan = planFor(CONFIGS[1]);
    const secretFiles = fileUnits(plan).filter((f) => f.secret);
    expect(secretFiles.map((f) => f.path)).toEqual(
      expect.arrayContaining([
        PATHS.chatmailIni,
        `${PATHS.invitesDir}/invite-1.png`,
        `${PATHS.invitesDir}/invite-1.txt`,
      ]),
    );
    for (const step of plan.steps) {
      expect(step.script, step.id).not.toContain(TOKEN);
      expect(step.id).not.toContain(TOKEN);
      if (!step.secret) expect(step.stdin, step.id).not.toContain(TOKEN);
    }
    expect(JSON.stringify(plan.warnings)).not.toContain(TOKEN);
  });

  it("marks chatmail.ini secret only when it carries invite tokens", () => {
    const ini = (p: ReturnType<typeof planFor>) => fileUnits(p).find((f) => f.path === PATHS.chatmailIni)!;
    expect(ini(planFor()).secret).toBe(false);
    expect(ini(planFor({ invite_token: TOKEN })).secret).toBe(true);
  });

  it("starts every text file the format allows with the generated-by comment", () => {
    const plan = planFor(CONFIGS[1]);
    const noComments = [
      /mta-sts\.txt$/,
      /^\/etc\/mailname$/,
      /^\/var\/www\/html\/(?!\.well-known)/,
      /\.xml$/,
    ];
    for (const file of fileUnits(plan)) {
      if (typeof file.content !== "string" || file.path === PATHS.daemonBundle) continue;
      if (file.path === PATHS.chatmailIni || file.path === PATHS.version) continue;
      if (noComments.some((re) => re.test(file.path)) || file.secret) continue;
      const head = file.content.split("\n").slice(0, 2).join("\n");
      expect(head, file.path).toMatch(/Generated by the chatmail relay deployment from templates\//);
    }
  });
});
