// The relay's DKIM key as an option (dkimPrivateKey): which keys are accepted, and the public half that DNS
// publishes. Parsing a key is computation (node:crypto), so it stays in the pure layer. No message here quotes
// the key or anything computed from its secret part.
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";

/** Shorter RSA keys are refused: receivers treat them as unsigned (RFC 8301 section 3.2). */
export const DKIM_MIN_BITS = 1024;

/**
 * Exactly one unencrypted PEM block: PKCS#8 (opendkim-genkey and `openssl genrsa` with OpenSSL 3, as on Debian 12)
 * or PKCS#1 (older ones, `openssl genrsa -traditional`).
 */
const PEM = /^-----BEGIN (RSA |)PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END \1PRIVATE KEY-----$/;

const ALLOWED =
  "use an unencrypted RSA private key in PEM, as opendkim-genkey or `openssl genrsa 2048` makes it (-----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)";

function parse(pem: string): KeyObject | undefined {
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return undefined;
  }
}

/** What is wrong with a dkimPrivateKey value, or undefined when it is a usable DKIM key. */
export function dkimKeyProblem(value: string): string | undefined {
  if (/-----BEGIN [A-Z0-9 ]*PUBLIC KEY-----/.test(value)) return `is a public key; ${ALLOWED}`;
  if (/ENCRYPTED/.test(value)) {
    return `is encrypted; ${ALLOWED} (\`openssl pkey -in KEY\` prints it without the passphrase)`;
  }
  const key = parse(value);
  if (key === undefined) return `is not a private key; ${ALLOWED}`;
  if (key.asymmetricKeyType !== "rsa")
    return `is a key of type ${key.asymmetricKeyType}, not RSA; ${ALLOWED}`;
  if (!PEM.test(value)) return "has text around the key; give only its lines from -----BEGIN to -----END";
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < DKIM_MIN_BITS) {
    return `is an RSA key of ${bits} bits; use one of at least ${DKIM_MIN_BITS} bits (opendkim-genkey makes 2048)`;
  }
  return undefined;
}

/**
 * The public half of a checked DKIM private key as the DKIM record carries it: base64 of the DER
 * SubjectPublicKeyInfo, which is what `openssl pkey -in KEY -pubout` prints between its PEM lines (the read-back
 * of a key made on the server, READ_BACK.dkimPublicKey in core/plan/facts.ts).
 */
export function dkimPublicKey(privateKeyPem: string): string {
  return createPublicKey(createPrivateKey({ key: privateKeyPem, format: "pem" }))
    .export({ type: "spki", format: "der" })
    .toString("base64");
}
