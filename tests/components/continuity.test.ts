// The stack program (index.ts) under the mock runtime with the options for moving and restoring a relay: the DKIM
// key given as an encrypted dkimPrivateKey and mail off. The DKIM record in the zoneFile output and at Cloudflare
// is the one the read-back of that key on the server would give (no read-back runs); the key travels only inside
// secret inputs and appears in no output; a plain value is refused like a plain invite token.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../core/config";
import { PROJECT_NAME } from "../../core/config/pulumiYaml";
import { rdata, relayRecords } from "../../core/dns";
import { PATHS, READ_BACK } from "../../core/plan/facts";
import { readStackConfig } from "../../components/stackConfig";
import {
  byType,
  clearText,
  created,
  findCreated,
  isSecretInput,
  mocks,
  plain,
  runProgram,
  valueOf,
} from "./helpers";

const DKIM_KEY = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString()
  .trim();
const KEY_LINES = DKIM_KEY.split("\n").filter((l) => !l.startsWith("-----"));
const settings = {
  mailDomain: "chat.example.org",
  hostProvider: "hetzner",
  sshPublicKey: "ssh-ed25519 AAAAtest operator",
  sshPrivateKey: "PRIVATE-KEY-SENTINEL",
  dnsProvider: "cloudflare",
  cloudflareZoneName: "example.org",
  acceptMail: "false",
  dkimPrivateKey: DKIM_KEY,
};
const config = loadConfig(settings);

const dir = mkdtempSync(join(tmpdir(), "components-continuity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The DKIM public key as the read-back on the server prints it, run by sh on the key in a file. */
function readBack(): string {
  const path = join(dir, "opendkim.private");
  writeFileSync(path, `${DKIM_KEY}\n`, { mode: 0o600 });
  return execFileSync("sh", ["-c", READ_BACK.dkimPublicKey.replaceAll(PATHS.dkimPrivateKey, path)], {
    encoding: "utf8",
  });
}

let outputs: Record<string, unknown>;

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, "chatmail-relay", "test", false);
  outputs = { ...(await runProgram(settings, ["sshPrivateKey", "dkimPrivateKey"])) };
  await valueOf(outputs.zoneFile as pulumi.Output<string>);
  await pulumi.runtime.disconnect();
});

const step = (id: string) => findCreated("command:remote:Command", `relay-config-${id}`);
const dkimRecord = () =>
  relayRecords(config, { ipv4: "203.0.113.10", dkimPublicKey: readBack() }).find(
    (r) => r.name === "opendkim._domainkey.chat.example.org",
  )!;

describe("dkimPrivateKey in the stack", () => {
  it("publishes the record of the given key in the zoneFile output, without reading it back", async () => {
    const zone = await valueOf(outputs.zoneFile as pulumi.Output<string>);
    const line = zone.split("\n").find((l) => l.startsWith("opendkim._domainkey.chat.example.org."))!;
    expect(line).toMatch(/ IN TXT /);
    expect(line.slice(line.indexOf(" IN TXT ") + " IN TXT ".length).trim()).toBe(rdata(dkimRecord()));
    expect(zone).not.toContain("Not yet known");
    expect(byType("command:remote:Command").map((c) => c.name)).not.toContain("relay-read-dkim-public-key");
  });

  it("gives Cloudflare the same DKIM record", () => {
    const txt = byType("cloudflare:index/dnsRecord:DnsRecord").find(
      (r) => r.inputs.name === "opendkim._domainkey.chat.example.org",
    )!;
    expect(txt.inputs.content).toBe(rdata(dkimRecord()));
  });

  it("sends the key only as the secret stdin of its file step, whose output and hash are secret", () => {
    const file = step(`file:${PATHS.dkimPrivateKey}`);
    expect(isSecretInput(file.inputs.stdin)).toBe(true);
    expect(plain(file.inputs.stdin)).toBe(`${DKIM_KEY}\n`);
    expect(file.inputs.logging).toBe("none");
    expect(file.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    // The triggers (hash, server id) reach the engine as one secret value.
    expect(isSecretInput(file.inputs.triggers)).toBe(true);
    // OpenDKIM restarts on the key: its hash is computed from it, so it is a secret too.
    expect(isSecretInput(step("service:opendkim.service").inputs.triggers)).toBe(true);
    expect(isSecretInput(step("service:nginx.service").inputs.triggers)).toBe(false);
  });

  it("never holds the key in clear in any resource's inputs", () => {
    expect(created.length).toBeGreaterThan(50);
    for (const r of created) {
      const clear = clearText(r.inputs);
      for (const line of KEY_LINES) {
        expect(
          clear.filter((s) => s.includes(line)),
          `${r.name}: the key in clear`,
        ).toEqual([]);
      }
    }
  });

  it("puts the key in no stack output", async () => {
    for (const [name, value] of Object.entries(outputs)) {
      const text = JSON.stringify(await valueOf(value as pulumi.Input<unknown>));
      for (const line of KEY_LINES) expect(text, name).not.toContain(line);
    }
  });

  it("is refused when set without --secret, with a message that does not quote it", () => {
    const key = (name: string) => `${PROJECT_NAME}:${name}`;
    pulumi.runtime.setAllConfig(
      Object.fromEntries(Object.entries(settings).map(([name, value]) => [key(name), value])),
      [key("sshPrivateKey")],
    );
    let message = "";
    try {
      readStackConfig();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toContain(
      "dkimPrivateKey: must be encrypted; set it with `pulumi config set --secret dkimPrivateKey`",
    );
    for (const line of KEY_LINES) expect(message).not.toContain(line);
  });
});

describe("acceptMail false in the stack", () => {
  it("disables and stops Postfix, its instance and Dovecot on the server", () => {
    for (const name of ["postfix.service", "postfix@-.service", "dovecot.service"]) {
      const script = step(`service:${name}`).inputs.create as string;
      expect(script, name).toContain(`systemctl disable ${name}`);
      expect(script, name).toContain(`systemctl stop ${name}`);
      expect(script, name).not.toMatch(/systemctl (enable|restart)\b/);
    }
  });
});
