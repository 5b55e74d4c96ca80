// TLS certificates for mailDomain, www.mailDomain and mta-sts.mailDomain, in one of three modes (tlsMode):
// - acme: acmetool obtains and renews them (docs/relay.md, 'TLS certificates'), with the changes of chatmail/relay
//   1.12.0 (cmdeploy/src/cmdeploy/acmetool/) over 1.7.0: a desired file and a reconcile run instead of
//   `acmetool want`, ECDSA keys, Debian's reconcile timer, the redirector on 127.0.0.1:402 behind nginx's port
//   80, and a hook that reloads the services when a certificate changes;
// - self-signed: one certificate made once with openssl (for test relays and IP-only setups);
// - external: files the operator provides; a path unit reloads the services when they change.
import type { RelayConfig } from "../../config";
import type { PlanContext } from "../context";
import { PATHS, tlsPaths } from "../facts";
import { q } from "../steps";
import { check, ids, once, packages, service, templateFile } from "../units";
import type { Unit } from "../types";

/** The names the certificate covers: the relay, its web alias and the MTA-STS policy host. */
export const certificateNames = (config: RelayConfig) => [
  config.mailDomain,
  `www.${config.mailDomain}`,
  `mta-sts.${config.mailDomain}`,
];

/** Services that read the certificate; the reload hooks name exactly these. */
const TLS_SERVICES = "dovecot.service postfix.service nginx.service";

/** Ids of activate-phase units after which the certificate exists; TLS services start after them. */
export function tlsReady(config: RelayConfig): string[] {
  return config.tlsMode === "acme" ? ["service:acmetool.service"] : [];
}

function acme(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  const vars = { certificateNames: certificateNames(config), tlsServices: TLS_SERVICES };
  const file = (path: string, template: string, mode?: string, then?: string) =>
    templateFile(ctx, path, template, { vars, ...(mode ? { mode } : {}), ...(then ? { then } : {}) });
  const target = file("/var/lib/acme/conf/target", "acmetool/target.njk");
  const responses = file("/var/lib/acme/conf/responses", "acmetool/responses.njk");
  // `acmetool want` (cmdeploy before 1.10) left desired files named DOMAIN-<hash>; two targets for the same
  // names would request two certificates.
  const desired = file(
    `/var/lib/acme/desired/${config.mailDomain}`,
    "acmetool/desired.njk",
    undefined,
    `rm -f ${q(`/var/lib/acme/desired/${config.mailDomain}`)}-*`,
  );
  const hook = file("/etc/acme/hooks/chatmail-reload", "acmetool/chatmail-reload.njk", "0755");
  const redirector = file(
    "/etc/systemd/system/acmetool-redirector.service",
    "acmetool/acmetool-redirector.service.njk",
  );
  // The challenge directory lives on /run (a tmpfs, the one place Debian's sandboxed acmetool.service may write),
  // so systemd makes it again at every boot.
  const challengeDir = file(
    "/etc/tmpfiles.d/chatmail-acme.conf",
    "acmetool/chatmail-acme.conf.njk",
    undefined,
    "systemd-tmpfiles --create /etc/tmpfiles.d/chatmail-acme.conf",
  );
  return [
    packages("acmetool", ["acmetool"]),
    target,
    responses,
    desired,
    hook,
    challengeDir,
    redirector,
    service("acmetool-redirector.service", { restartOn: ids([redirector]) }),
    // Debian's acmetool.service is a one-shot `acmetool --batch reconcile`: restarting it obtains the
    // certificate now (and again whenever the names, the CA or the account change). On a fresh server nothing
    // holds port 80 yet, so acmetool answers the challenge itself; later nginx forwards it to the redirector.
    service("acmetool.service", {
      enabled: false,
      restartOn: ids([target, responses, desired]),
      after: ["service:acmetool-redirector.service"],
    }),
    // Debian's timer runs the same reconcile twice a day, which renews certificates 30 days before expiry.
    service("acmetool.timer"),
  ];
}

function selfSigned(ctx: PlanContext): Unit[] {
  const names = certificateNames(ctx.config);
  const cert = PATHS.selfSignedCert;
  const key = PATHS.selfSignedKey;
  // Made once: clients that accepted this certificate (or pinned it) keep working across deploys.
  const script = [
    "work=$(mktemp -d)",
    `trap 'rm -rf "$work"' EXIT`,
    [
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 36500",
      `-keyout "$work/key" -out "$work/cert" -subj ${q(`/CN=${names[0]}`)}`,
      "-addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth,clientAuth",
      `-addext ${q(`subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`)}`,
    ].join(" "),
    `install -D -m 0600 "$work/key" ${q(key)}`,
    `install -D -m 0644 "$work/cert" ${q(cert)}`,
  ].join("\n");
  return [once("self-signed-certificate", `self-signed certificate for ${names.join(", ")}`, cert, script)];
}

function external(ctx: PlanContext): Unit[] {
  const { cert, key } = tlsPaths(ctx.config);
  const vars = { tlsServices: TLS_SERVICES };
  const reloadService = templateFile(
    ctx,
    "/etc/systemd/system/tls-cert-reload.service",
    "tls/tls-cert-reload.service.njk",
    { vars },
  );
  const pathUnit = templateFile(
    ctx,
    "/etc/systemd/system/tls-cert-reload.path",
    "tls/tls-cert-reload.path.njk",
    { vars },
  );
  const missing = [cert, key]
    .map(
      (p) =>
        `[ -r ${q(p)} ] || { echo ${q(`tlsMode external: ${p} does not exist on the server; copy the certificate and key there first`)} >&2; exit 1; }`,
    )
    .join("\n");
  return [
    check("tls-external-files", "the external certificate and key exist", missing),
    reloadService,
    pathUnit,
    service("tls-cert-reload.path", { restartOn: ids([reloadService, pathUnit]) }),
  ];
}

/** trustedCaCertificates as the operator gave it; the bundle is rebuilt from it. */
export const TRUSTED_CA_PATH = "/etc/chatmail/trusted-ca.pem";
/** One file per certificate: OpenSSL's hashed directory (Postfix's smtp_tls_CApath) skips files holding several. */
const TRUSTED_CA_DIR = "/usr/local/share/ca-certificates/chatmail";

/**
 * The operator's extra CAs (a private ACME CA, a test network's CA), added to /etc/ssl/certs, which Postfix,
 * acmetool and curl read. Written even when empty, so that removing the option also removes the trust.
 */
function trustedCas(ctx: PlanContext): Unit {
  const split = [
    `rm -rf ${q(TRUSTED_CA_DIR)}`,
    `mkdir -p ${q(TRUSTED_CA_DIR)}`,
    `awk -v dir=${q(TRUSTED_CA_DIR)} '/-----BEGIN CERTIFICATE-----/ { n++; f = sprintf("%s/ca-%d.crt", dir, n) } f { print > f } /-----END CERTIFICATE-----/ { close(f); f = "" }' ${q(TRUSTED_CA_PATH)}`,
    "update-ca-certificates --fresh >/dev/null",
  ].join("\n");
  return templateFile(ctx, TRUSTED_CA_PATH, "tls/trusted-ca.pem.njk", { then: split });
}

function modeUnits(ctx: PlanContext): Unit[] {
  switch (ctx.config.tlsMode) {
    case "acme":
      return acme(ctx);
    case "self-signed":
      return selfSigned(ctx);
    case "external":
      return external(ctx);
  }
}

export function tls(ctx: PlanContext): Unit[] {
  return [trustedCas(ctx), ...modeUnits(ctx)];
}
