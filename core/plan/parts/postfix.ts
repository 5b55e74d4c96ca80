// Postfix: the MTA on ports 25, 465 and 587 and the loopback re-injection listeners of the encryption filter.
import type { PlanContext } from "../context";
import { ids, mailServiceState, packages, service, templateFile, user, validation } from "../units";
import type { Unit } from "../types";
import { tlsReady } from "./tls";

export function postfix(ctx: PlanContext): Unit[] {
  const file = (name: string, then?: string) =>
    templateFile(ctx, `/etc/postfix/${name}`, `postfix/${name}.njk`, then ? { then } : {});
  const files = [
    file("main.cf"),
    file("master.cf"),
    file("submission_header_cleanup"),
    file("lmtp_header_cleanup"),
    file("login_map"),
    file("smtp_tls_policy_map"),
    // Debian's postfix@-.service runs the master; it comes back by itself after a crash (as in chatmail/relay
    // 1.12.0, cmdeploy/src/cmdeploy/service/10_restart_on_failure.conf).
    templateFile(
      ctx,
      "/etc/systemd/system/postfix@.service.d/10-chatmail.conf",
      "postfix/10-chatmail.conf.njk",
    ),
  ];
  return [
    packages("postfix", ["postfix"], ["postfix postfix/main_mailer_type select No configuration"]),
    // postfix (made by its package) reaches the OpenDKIM milter socket through the opendkim group.
    user("postfix", { home: "/var/spool/postfix", extraGroups: ["opendkim"], phase: "configure" }),
    ...files,
    // postconf reports unknown or misspelt settings only as warnings, so any output counts as a refusal.
    validation(
      "postfix-config",
      "postfix",
      "{ postconf >/dev/null && postconf -M >/dev/null || echo postconf failed; } 2>&1 | { ! grep .; }",
      files,
    ),
    service("postfix.service", {
      restartOn: ids(files),
      after: ["check:postfix-config", "service:dovecot.service", ...tlsReady(ctx.config)],
      ...mailServiceState(ctx.config),
    }),
    ...(ctx.config.acceptMail ? [] : [postfixInstanceOff()]),
  ];
}

/**
 * Debian's postfix.service is a oneshot wrapper; the master runs in postfix@-.service, which is PartOf the wrapper
 * (stopping the wrapper stops it) and wanted by it through Debian's postfix-instance-generator. With mail off the
 * instance is also stopped and disabled by name: its [Install] section lets it be enabled on its own, and then
 * it would start at boot without the wrapper. With mail on again it leaves the plan, and restarting the wrapper
 * starts it.
 */
function postfixInstanceOff(): Unit {
  return service("postfix@-.service", {
    enabled: false,
    running: false,
    after: ["service:postfix.service"],
  });
}
