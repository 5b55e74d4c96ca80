// The DKIM record of a key given as dkimPrivateKey is exactly the record the read-back of that key on the server
// gives (READ_BACK.dkimPublicKey: `openssl pkey -pubout`, run here by sh on the key in a file), for the key forms
// operators have: PKCS#1 and PKCS#8 from node:crypto, and a key made by opendkim-genkey itself.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dkimPublicKey, loadConfig } from "../../core/config";
import { relayRecords, zoneFile } from "../../core/dns";
import { PATHS, READ_BACK } from "../../core/plan/facts";

const dir = mkdtempSync(join(tmpdir(), "dns-dkim-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the read-back prints for the key in `path`: the very command the Relay runs over SSH. */
const readBack = (path: string) =>
  execFileSync("sh", ["-c", READ_BACK.dkimPublicKey.replaceAll(PATHS.dkimPrivateKey, path)], {
    encoding: "utf8",
  });

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });

/** opendkim-genkey as the create-once step runs it, into a folder of its own. */
function opendkimGenkey(): string {
  const keyDir = mkdtempSync(join(dir, "genkey-"));
  execFileSync("opendkim-genkey", ["-D", keyDir, "-d", "chat.example.org", "-s", "opendkim"]);
  return readFileSync(join(keyDir, "opendkim.private"), "utf8");
}

const FORMS: [string, () => string][] = [
  ["PKCS#1", () => privateKey.export({ type: "pkcs1", format: "pem" }).toString()],
  ["PKCS#8", () => privateKey.export({ type: "pkcs8", format: "pem" }).toString()],
  ["opendkim-genkey", opendkimGenkey],
];

describe("the DKIM record of dkimPrivateKey", () => {
  it.each(FORMS)("equals the read-back's for a %s key", (form, make) => {
    const pem = make();
    const path = join(dir, `${form.replace(/\W/g, "")}.private`);
    writeFileSync(path, pem, { mode: 0o600 });
    const fromServer = readBack(path);
    expect(fromServer).toMatch(/^MII[A-Za-z0-9+/]+=*$/);

    const config = loadConfig({ mailDomain: "chat.example.org", dkimPrivateKey: pem });
    expect(dkimPublicKey(config.dkimPrivateKey!)).toBe(fromServer);
    const facts = { ipv4: "203.0.113.10" };
    const fromConfig = relayRecords(config, {
      ...facts,
      dkimPublicKey: dkimPublicKey(config.dkimPrivateKey!),
    });
    expect(fromConfig).toEqual(relayRecords(config, { ...facts, dkimPublicKey: fromServer }));
    expect(zoneFile(config, fromConfig)).toContain(`p=${fromServer.slice(0, 200)}`);
  });
});
