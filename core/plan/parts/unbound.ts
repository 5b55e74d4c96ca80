// unbound: the relay's own validating DNS resolver on 127.0.0.1 (docs/relay.md, 'unbound'; set up as in
// chatmail/relay 1.12.0, cmdeploy/src/cmdeploy/unbound/unbound.conf.j2 and UnboundDeployer in deployers.py).
// Postfix looks up MX records and OpenDKIM DKIM keys through it; resolv.conf is a plain file so that neither
// systemd-resolved nor resolvconf rewrites it.
import type { PlanContext } from "../context";
import { FALLBACK_RESOLVER } from "../facts";
import { ids, packages, service, templateFile, validation } from "../units";
import type { Unit } from "../types";

export function unbound(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  const conf = templateFile(ctx, "/etc/unbound/unbound.conf.d/chatmail.conf", "unbound/chatmail.conf.njk");
  const resolvConf = templateFile(ctx, "/etc/resolv.conf", "unbound/resolv.conf.njk", {
    vars: { fallbackResolver: config.resolverForwarders[0] ?? FALLBACK_RESOLVER },
  });
  return [
    // dns-root-data provides the DNSSEC root key that unbound's helper installs (and OpenDKIM's TrustAnchorFile).
    packages("unbound", ["unbound", "dns-root-data"]),
    conf,
    resolvConf,
    // Another resolver on port 53 (a cloud image's systemd-resolved) would shadow ours; it is switched off.
    service("systemd-resolved.service", { enabled: false, running: false }),
    // Debian's hook that would point resolvconf at unbound; /etc/resolv.conf is ours.
    service("unbound-resolvconf.service", { enabled: false, running: false }),
    validation("unbound-config", "unbound", "unbound-checkconf", [conf]),
    service("unbound.service", {
      restartOn: ids([conf]),
      after: ["check:unbound-config", "service:systemd-resolved.service"],
    }),
  ];
}
