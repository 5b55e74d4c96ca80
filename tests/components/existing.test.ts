// The relay on a server the operator already has, without a DNS provider, under the Pulumi mock runtime.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { planRelay } from "../../core/plan";
import { Relay } from "../../components/relay";
import { byType, created, findCreated, isSecretInput, mocks, plain, testAssets, valueOf } from "./helpers";

const TOKEN = "inviteSentinel42";
const config = loadConfig({
  mailDomain: "chat.example.org",
  hostProvider: "existing",
  hostAddress: "198.51.100.7",
  sshUser: "root",
  sshPort: 2222,
  sshPrivateKey: "PRIVATE-KEY-SENTINEL",
  dnsProvider: "none",
  tlsMode: "self-signed",
  inviteTokens: [TOKEN],
});
const assets = testAssets();
let relay: Relay;
let twin: Relay;

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, "chatmail-relay", "test", false);
  const key = pulumi.secret("PRIVATE-KEY-SENTINEL");
  relay = new Relay("relay", { config, assets, sshPrivateKey: key });
  // The same program a second time: every resource must receive identical inputs (nothing to do on re-run).
  twin = new Relay("twin", { config, assets, sshPrivateKey: key });
  await valueOf(relay.zoneFile);
  await valueOf(twin.zoneFile);
  await pulumi.runtime.disconnect();
});

const commands = (prefix: string) =>
  byType("command:remote:Command").filter((c) => c.name.startsWith(`${prefix}-config-`));
const step = (id: string) => findCreated("command:remote:Command", `relay-config-${id}`);
const urn = (id: string) => step(id).urn!;

describe("ExistingHost without a DNS provider", () => {
  it("creates no cloud resources and no DNS records", () => {
    expect(created.filter((c) => c.type.startsWith("hcloud:") || c.type.startsWith("cloudflare:"))).toEqual(
      [],
    );
  });

  it("connects to the given address, port and user", () => {
    const connection = plain(commands("relay")[0].inputs.connection);
    expect(connection).toMatchObject({
      host: "198.51.100.7",
      port: 2222,
      user: "root",
      privateKey: "PRIVATE-KEY-SENTINEL",
    });
  });

  it("exports the zone file for manual DNS, with the address and the DKIM key read from the server", async () => {
    const zone = await valueOf(relay.zoneFile);
    expect(zone).toMatch(/^chat\.example\.org\.\s+3600 IN A\s+198\.51\.100\.7$/m);
    expect(zone).toMatch(
      /^opendkim\._domainkey\.chat\.example\.org\.\s+3600 IN TXT\s+"v=DKIM1;k=rsa;p=MIIB/m,
    );
  });

  it("exports the onboarding link and one invite link per token, as a secret", async () => {
    expect(relay.dcaccountLink).toBe("dcaccount:https://chat.example.org/new");
    expect(await pulumi.isSecret(relay.inviteLinks)).toBe(true);
    expect(await valueOf(relay.inviteLinks)).toEqual([`dcaccount:https://chat.example.org/new?${TOKEN}`]);
  });
});

describe("ServerConfig", () => {
  it("creates one remote command per plan step, each with a content hash trigger", () => {
    const plan = planRelay(config, assets);
    // The engine registers resources concurrently; order is carried by dependencies, tested below.
    expect(
      commands("relay")
        .map((c) => c.name)
        .sort(),
    ).toEqual(plan.steps.map((s) => `relay-config-${s.id}`).sort());
    for (const s of plan.steps) {
      const c = step(s.id);
      expect(c.inputs.create).toBe(s.script);
      expect(plain(c.inputs.triggers)[0]).toBe(s.hash);
      expect(c.inputs.addPreviousOutputInEnv).toBe(false);
    }
  });

  it("gives every resource identical inputs when the program runs again with the same config", () => {
    const first = commands("relay");
    const second = new Map(commands("twin").map((c) => [c.name.replace(/^twin-/, "relay-"), c]));
    expect(second.size).toBe(first.length);
    for (const c of first) expect(plain(second.get(c.name)!.inputs), c.name).toEqual(plain(c.inputs));
  });

  it("sends file contents on stdin, never in the command line", () => {
    for (const s of planRelay(config, assets).steps.filter((s) => s.kind === "file")) {
      expect(step(s.id).inputs.create).not.toContain(s.stdin.slice(0, 200) || "\u0000");
      // An empty file has no stdin at all.
      expect(plain(step(s.id).inputs.stdin)).toBe(s.stdin === "" ? undefined : s.stdin);
    }
  });

  it("orders packages before configuration, configuration before services, dovecot before postfix", () => {
    const plan = planRelay(config, assets);
    const packages = plan.steps.filter((s) => s.kind === "packages").map((s) => urn(s.id));
    const anyFile = plan.steps.find((s) => s.kind === "file")!;
    const firstFilePhase = plan.steps.filter((s) => s.phase === anyFile.phase);
    for (const f of firstFilePhase) expect(step(f.id).dependencies).toEqual(expect.arrayContaining(packages));
    expect(step("service:postfix.service").dependencies).toContain(urn("service:dovecot.service"));
    // TLS before the services that use it: the self-signed certificate exists before they (re)start.
    const cert = plan.steps.find((s) => s.files.includes("/etc/ssl/certs/mailserver.pem"))!;
    for (const service of ["postfix", "dovecot", "nginx"]) {
      expect(step(`service:${service}.service`).dependencies).toContain(urn(cert.id));
    }
    expect(step("service:postfix.service").dependencies).toContain(urn("file:/etc/postfix/main.cf"));
  });

  it("reads the DKIM key only after the step that makes it", () => {
    const plan = planRelay(config, assets);
    const keyStep = plan.steps.find(
      (s) => s.kind === "once" && s.files.includes("/etc/dkimkeys/opendkim.private"),
    )!;
    const read = findCreated("command:remote:Command", "relay-read-dkim-public-key");
    expect(read.dependencies).toContain(urn(keyStep.id));
    // Only the public half leaves the server, so the private key never enters Pulumi state.
    expect(read.inputs.create).toContain("-pubout");
  });
});

describe("secrets", () => {
  it("never puts an invite token into a command line, trigger or non-secret input", () => {
    for (const c of byType("command:remote:Command")) {
      expect(JSON.stringify(c.inputs.create ?? "")).not.toContain(TOKEN);
      if (!isSecretInput(c.inputs.stdin)) expect(JSON.stringify(c.inputs.stdin ?? "")).not.toContain(TOKEN);
      if (!isSecretInput(c.inputs.triggers?.[0]))
        expect(JSON.stringify(c.inputs.triggers)).not.toContain(TOKEN);
    }
  });

  it("masks the steps that carry a token: secret stdin, no logging, secret outputs", () => {
    const secretSteps = planRelay(config, assets).steps.filter((s) => s.secret);
    expect(secretSteps.map((s) => s.id)).toContain("file:/usr/local/lib/chatmaild/chatmail.ini");
    for (const s of secretSteps) {
      const c = step(s.id);
      expect(isSecretInput(c.inputs.stdin)).toBe(true);
      expect(c.inputs.logging).toBe("none");
      expect(c.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    }
  });

  it("keeps every step that mentions a token secret", () => {
    for (const s of planRelay(config, assets).steps) {
      if (s.stdin.includes(TOKEN)) expect(s.secret, s.id).toBe(true);
      expect(s.script, s.id).not.toContain(TOKEN);
    }
  });
});
