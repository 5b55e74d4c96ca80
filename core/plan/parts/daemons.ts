// The relay's own daemons: one bundled Node program (daemons/main.ts) run by one long-lived unit plus two
// timer-driven jobs (in place of chatmail/relay 1.12.0's units, cmdeploy/src/cmdeploy/service/, including its
// chatmail-expire and chatmail-fsreport timers), and optionally mtail for Prometheus metrics (docs/relay.md,
// 'mtail'). chatmaild.service holds the dict sockets Dovecot uses, the new-account HTTP service and the two SMTP
// proxies Postfix passes mail through: one process, because one Node runtime costs about 45 MB and the budget for
// all daemons is 100 MB idle and 160 MB under load (`npm run bench -- memory`; docs/decisions.md, 'One chatmaild
// process'). It restarts when the bundle or chatmail.ini changes.
import { appVersionsJson } from "../../config";
import { CHATMAILD_NODE_FLAGS, SERVICES } from "../../server";
import type { PlanContext } from "../context";
import { PATHS, PORTS } from "../facts";
import { contentFile, fileId, ids, packages, service, templateFile } from "../units";
import type { Unit } from "../types";

/**
 * Units of relays deployed by cmdeploy that chatmaild.service replaces (chatmail/relay 1.7.0 to 1.12.0,
 * cmdeploy/src/cmdeploy/service/ and filtermail/, and older doveauth-dictproxy); they are stopped and
 * disabled so their sockets and ports are free, and the prune unit removes their unit files. On a new server
 * this does nothing.
 */
export const REPLACED_UNITS = [
  "doveauth.service",
  "doveauth-dictproxy.service",
  "chatmail-metadata.service",
  "lastlogin.service",
  "echobot.service",
  "filtermail.service",
  "filtermail-incoming.service",
  "filtermail-transport.service",
];

export function daemons(ctx: PlanContext): Unit[] {
  const { config, assets } = ctx;
  const run = `${PATHS.node} ${CHATMAILD_NODE_FLAGS.join(" ")} ${PATHS.daemonBundle} ${PATHS.chatmailIni}`;
  const vars = {
    // With turnServer, the metadata daemon reads the TURN secret from the copy systemd gives it (%d is
    // the unit's credentials directory, see chatmaild.service).
    chatmaildCommand: `${run} ${SERVICES.join(" ")}${config.turnServer ? " --turn-secret %d/turn-secret" : ""}`,
    expireCommand: `${run} expire`,
    fsreportCommand: `${run} fsreport`,
  };
  const unit = (name: string) =>
    templateFile(ctx, `/etc/systemd/system/${name}`, `chatmaild/${name}.njk`, { vars });
  const bundle = contentFile(PATHS.daemonBundle, assets.daemonBundle);
  const ini = fileId(PATHS.chatmailIni);
  const chatmaild = unit("chatmaild.service");
  const expire = [unit("chatmail-expire.service"), unit("chatmail-expire.timer")];
  const fsreport = [unit("chatmail-fsreport.service"), unit("chatmail-fsreport.timer")];
  const replaced = REPLACED_UNITS.map((name) => service(name, { enabled: false, running: false }));
  // The metrics facts file comes from planRelay (metricsFacts below), which knows every service of the plan.
  const metricsOn = config.metricsAddress !== "";
  // Read by the metadata daemon at each lookup, so a new file needs no restart.
  const appVersions =
    assets.appVersions === undefined
      ? []
      : [contentFile(PATHS.appVersions, `${appVersionsJson(assets.appVersions)}\n`)];
  const units: Unit[] = [
    // Debian 12's nodejs is version 18; the bundle targets it (esbuild target node18).
    packages("nodejs", ["nodejs"]),
    bundle,
    chatmaild,
    ...expire,
    ...fsreport,
    ...appVersions,
    ...replaced,
    service("chatmaild.service", {
      restartOn: [...ids([bundle, chatmaild]), ini, ...(metricsOn ? [fileId(PATHS.metricsFacts)] : [])],
      after: [...ids(replaced), ...(config.turnServer ? ["once:turn-secret"] : [])],
      // Dovecot and Postfix need the dict sockets and the filter ports the moment the deploy ends.
      ready: [
        ...[PATHS.doveauthSocket, PATHS.metadataSocket, PATHS.lastloginSocket].map((s) => `[ -S ${s} ]`),
        ...[
          config.filtermailSmtpPort,
          config.filtermailSmtpPortIncoming,
          config.newAccountPort,
          ...(metricsOn ? [PORTS.chatmaildMetrics] : []),
        ].map((p) => `ss -Hltn 'sport = :${p}' | grep -q .`),
      ].join(" && "),
    }),
    // The jobs themselves are started by their timers only; a deploy must not interrupt a running expiry.
    service("chatmail-expire.timer", { restartOn: ids(expire) }),
    service("chatmail-fsreport.timer", { restartOn: ids(fsreport) }),
  ];
  return [...units, ...mtail(ctx)];
}

/**
 * What chatmaild's metrics need from the plan (core/server.ts METRICS_FACTS), only with metricsAddress: the
 * services the plan runs, for chatmail_unit_active, and the certificate the relay serves (tlsCert). planRelay
 * adds it once every part has given its units; chatmaild restarts when it changes.
 */
export function metricsFacts(ctx: PlanContext, units: readonly Unit[]): Unit[] {
  if (ctx.config.metricsAddress === "") return [];
  const metricsUnits = units.flatMap((u) => (u.kind === "service" && u.running ? [u.name] : []));
  return [templateFile(ctx, PATHS.metricsFacts, "chatmaild/metrics.conf.njk", { vars: { metricsUnits } })];
}

/** mtail turns journal lines into Prometheus counters on mtailAddress:3903; off (and stopped) when unset. */
function mtail(ctx: PlanContext): Unit[] {
  const address = ctx.config.mtailAddress;
  if (address === undefined) return [service("mtail.service", { enabled: false, running: false })];
  const vars = { mtailListen: `--address=${address} --port=${PORTS.mtail}` };
  const program = templateFile(ctx, "/etc/mtail/chatmail.mtail", "mtail/chatmail.mtail.njk");
  const unitFile = templateFile(ctx, "/etc/systemd/system/mtail.service", "mtail/mtail.service.njk", {
    vars,
  });
  return [
    // Debian's mtail (3.0.0~rc50); its own unit is replaced by ours, which feeds it the journal.
    packages("mtail", ["mtail"]),
    program,
    unitFile,
    service("mtail.service", { restartOn: ids([program, unitFile]) }),
  ];
}
