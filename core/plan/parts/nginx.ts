// nginx: port 443 carries HTTPS, IMAP and SMTP (ALPN multiplexing for networks that only allow 443), the web
// pages, account creation at /new, autoconfig, the MTA-STS policy and the iroh relay proxy; port 80 answers ACME
// challenges and redirects to HTTPS (docs/relay.md, 'nginx'; as chatmail/relay 1.12.0,
// cmdeploy/src/cmdeploy/nginx/nginx.conf.j2).
import type { PlanContext } from "../context";
import { PATHS } from "../facts";
import { ids, packages, service, templateFile, validation } from "../units";
import type { Unit } from "../types";
import { tlsReady } from "./tls";

/** The MTA-STS policy (RFC 8461, section 3.2); the DNS `_mta-sts` id is derived from this file's content. */
export const MTA_STS_POLICY_PATH = `${PATHS.webRoot}/.well-known/mta-sts.txt`;
/** Four weeks, as cmdeploy relays publish it (RFC 8461, section 3.2, allows up to a year). */
const MTA_STS_MAX_AGE_SECONDS = 2419200;

export function nginx(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  const vars = { mtaStsMaxAge: MTA_STS_MAX_AGE_SECONDS };
  const conf = templateFile(ctx, "/etc/nginx/nginx.conf", "nginx/nginx.conf.njk", { vars });
  return [
    packages("nginx", ["nginx", "libnginx-mod-stream"]),
    conf,
    // Static files, served as they are on disk: changing them needs no reload.
    templateFile(
      ctx,
      `${PATHS.webRoot}/.well-known/autoconfig/mail/config-v1.1.xml`,
      "nginx/config-v1.1.xml.njk",
    ),
    templateFile(ctx, MTA_STS_POLICY_PATH, "nginx/mta-sts.txt.njk", { vars }),
    // After the certificate exists (TLS part), which in acme mode also means after the redirector left port 80
    // on relays moved from cmdeploy.
    validation("nginx-config", "nginx", "nginx -t -q", [conf], tlsReady(config)),
    service("nginx.service", { restartOn: ids([conf]), after: ["check:nginx-config", ...tlsReady(config)] }),
  ];
}
