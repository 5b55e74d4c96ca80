// The two options for moving and restoring a relay: acceptMail (mail off while a server is prepared) and
// dkimPrivateKey (the relay's DKIM key from the config). A bad key is refused at preview with a message that names
// the option and says what is allowed, and never quotes the key.
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../core/config";

const BASE = { mailDomain: "chat.example.org" };

const rsa = (bits: number) => generateKeyPairSync("rsa", { modulusLength: bits });
const { privateKey, publicKey } = rsa(2048);
const PKCS1 = privateKey.export({ type: "pkcs1", format: "pem" }).toString().trim();
const PKCS8 = privateKey.export({ type: "pkcs8", format: "pem" }).toString().trim();

/** The base64 lines of a PEM value: none may appear in a message. */
const bodyLines = (pem: string) => pem.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("-----"));

function refusal(value: string): string {
  try {
    loadConfig({ ...BASE, dkimPrivateKey: value });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    for (const line of bodyLines(value)) expect(message).not.toContain(line);
    return message;
  }
  throw new Error("expected the key to be refused");
}

describe("acceptMail", () => {
  it("is true unless set, and reads true and false", () => {
    expect(loadConfig(BASE).acceptMail).toBe(true);
    expect(loadConfig({ ...BASE, acceptMail: "false" }).acceptMail).toBe(false);
    expect(loadConfig({ ...BASE, acceptMail: false }).acceptMail).toBe(false);
    expect(loadConfig({ ...BASE, acceptMail: "true" }).acceptMail).toBe(true);
  });

  it("refuses anything else, naming the option", () => {
    expect(() => loadConfig({ ...BASE, acceptMail: "off" })).toThrow(
      'acceptMail: "off" is not allowed; use true or false',
    );
  });
});

describe("dkimPrivateKey", () => {
  it("is unset by default and when empty (the default Pulumi.yaml declares)", () => {
    expect(loadConfig(BASE).dkimPrivateKey).toBeUndefined();
    expect(loadConfig({ ...BASE, dkimPrivateKey: "" }).dkimPrivateKey).toBeUndefined();
  });

  it.each([
    ["PKCS#1 (BEGIN RSA PRIVATE KEY), as older opendkim-genkey and openssl genrsa wrote it", PKCS1],
    ["PKCS#8 (BEGIN PRIVATE KEY), as opendkim-genkey and openssl genrsa write it on Debian 12", PKCS8],
  ])("accepts an RSA key in %s", (_, pem) => {
    expect(loadConfig({ ...BASE, dkimPrivateKey: pem }).dkimPrivateKey).toBe(pem);
  });

  it("accepts a key pasted with Windows line ends or a trailing line break, and keeps it as PEM", () => {
    const pasted = `${PKCS1.replace(/\n/g, "\r\n")}\r\n`;
    expect(loadConfig({ ...BASE, dkimPrivateKey: pasted }).dkimPrivateKey).toBe(PKCS1);
  });

  it("accepts a 1024-bit key, the shortest allowed", () => {
    const pem = rsa(1024).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    expect(() => loadConfig({ ...BASE, dkimPrivateKey: pem })).not.toThrow();
  });

  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const ed25519 = generateKeyPairSync("ed25519").privateKey;
  it.each<[string, string, string]>([
    ["text that is no key", "not a key at all", "is not a private key"],
    [
      "a PEM block with a broken body",
      "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
      "is not a private key",
    ],
    [
      "a public key (SubjectPublicKeyInfo)",
      publicKey.export({ type: "spki", format: "pem" }).toString(),
      "is a public key",
    ],
    [
      "a public key (PKCS#1)",
      publicKey.export({ type: "pkcs1", format: "pem" }).toString(),
      "is a public key",
    ],
    ["an EC key", ec.export({ type: "pkcs8", format: "pem" }).toString(), "is a key of type ec, not RSA"],
    [
      "an EC key in SEC1 form",
      ec.export({ type: "sec1", format: "pem" }).toString(),
      "is a key of type ec, not RSA",
    ],
    [
      "an Ed25519 key",
      ed25519.export({ type: "pkcs8", format: "pem" }).toString(),
      "is a key of type ed25519, not RSA",
    ],
    [
      "an encrypted key",
      privateKey
        .export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" })
        .toString(),
      "is encrypted",
    ],
    [
      "an RSA key of 512 bits",
      rsa(512).privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      "is an RSA key of 512 bits; use one of at least 1024 bits",
    ],
    ["a key with other text before it", `Bag Attributes: x\n${PKCS8}`, "has text around the key"],
    ["two keys", `${PKCS1}\n${PKCS8}`, "has text around the key"],
    ["a key with a tab in it", PKCS1.replace("\n", "\t\n"), "contains a control character"],
  ])("refuses %s, naming the option and what is allowed, without quoting the key", (_, value, problem) => {
    const message = refusal(value);
    expect(message).toContain(`dkimPrivateKey: the value ${problem}`);
    if (!problem.startsWith("contains") && !problem.startsWith("has text") && !problem.includes("bits")) {
      expect(message).toContain("use an unencrypted RSA private key in PEM");
    }
  });

  it("refuses a value too long for a key without quoting it", () => {
    expect(refusal(`${PKCS1}\n${"A".repeat(20_000)}`)).toContain("dkimPrivateKey: the value is too long");
  });
});
