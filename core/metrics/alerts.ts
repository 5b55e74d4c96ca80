// Prometheus alerting rules for one relay, generated from its config: the refusal thresholds it enforces become
// the alert thresholds, so an alert fires before users see "try later". The operator loads the file into their
// Prometheus (stack output `alertRules`, or `npm run render`) and scrapes chatmaild's metrics (docs/alerts.md)
// with the label `relay="<mailDomain>"`, which every rule selects on so one Prometheus can watch a fleet.
import { parseSizeMb, type RelayConfig } from "../config";

/** Days before expiry from which a certificate alert fires (acmetool renews 30 days before expiry). */
export const CERT_ALERT_DAYS = 14;
/** Hours without an accepted incoming message after which a relay looks cut off from the world. */
export const NO_INCOMING_MAIL_HOURS = 24;
/** Alert when free disk or memory falls below this multiple of the refusal threshold. */
export const NEAR_THRESHOLD_FACTOR = 1.5;

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  /** Prometheus duration the condition must hold, like "10m". */
  readonly for: string;
  readonly severity: "warning" | "critical";
  readonly summary: string;
}

const MB = 1024 * 1024;

/** A warning near a refusal threshold and a critical alert below it, for one resource. */
function limitAlerts(
  config: RelayConfig,
  name: "Disk" | "Memory",
  metric: string,
  what: string,
  option: "minFreeDiskSpace" | "minAvailableMemory",
): AlertRule[] {
  const selector = `${metric}{relay="${config.mailDomain}"}`;
  const limit = parseSizeMb(config[option]) * MB;
  const rule = `${option} ${config[option]}`;
  return [
    {
      alert: `Chatmail${name}NearLimit`,
      expr: `${selector} < ${Math.round(limit * NEAR_THRESHOLD_FACTOR)}`,
      for: "10m",
      severity: "warning",
      summary: `${what} on ${config.mailDomain} is near ${rule}, below which new accounts are refused.`,
    },
    {
      alert: `Chatmail${name}BelowLimit`,
      expr: `${selector} < ${limit}`,
      for: "5m",
      severity: "critical",
      summary: `${what} on ${config.mailDomain} is below ${rule}: new accounts are refused.`,
    },
  ];
}

export function alertRules(config: RelayConfig): AlertRule[] {
  const s = `relay="${config.mailDomain}"`;
  return [
    {
      alert: "ChatmailMetricsDown",
      expr: `up{${s}} == 0`,
      for: "5m",
      severity: "critical",
      summary: `Prometheus cannot scrape chatmaild on ${config.mailDomain}: the relay or its daemons are down.`,
    },
    {
      alert: "ChatmailUnitDown",
      expr: `chatmail_unit_active{${s}} == 0`,
      for: "5m",
      severity: "critical",
      summary: `{{ $labels.unit }} is not running on ${config.mailDomain}.`,
    },
    ...limitAlerts(config, "Disk", "chatmail_disk_free_bytes", "Free disk", "minFreeDiskSpace"),
    ...limitAlerts(
      config,
      "Memory",
      "chatmail_memory_available_bytes",
      "Available memory",
      "minAvailableMemory",
    ),
    {
      alert: "ChatmailCertificateExpiresSoon",
      expr: `chatmail_certificate_expiry_timestamp_seconds{${s}} - time() < ${CERT_ALERT_DAYS * 86400}`,
      for: "1h",
      severity: "critical",
      summary: `The TLS certificate of ${config.mailDomain} expires within ${CERT_ALERT_DAYS} days: renewal is failing (journalctl -u acmetool.service).`,
    },
    {
      alert: "ChatmailMailQueueGrowing",
      expr: `chatmail_postfix_queue_messages{${s}} > 20 and deriv(chatmail_postfix_queue_messages{${s}}[30m]) > 0`,
      for: "30m",
      severity: "warning",
      summary: `The mail queue of ${config.mailDomain} has grown for 30 minutes (postqueue -p shows why).`,
    },
    {
      alert: "ChatmailMailQueueStale",
      expr: `chatmail_postfix_queue_oldest_age_seconds{${s}} > 6 * 3600`,
      for: "15m",
      severity: "warning",
      summary: `A message has waited over 6 hours in the queue of ${config.mailDomain}.`,
    },
    {
      alert: "ChatmailPushFailuresRising",
      expr:
        `rate(chatmail_push_failures_total{${s}}[15m]) > 0.2 * ` +
        `(rate(chatmail_push_deliveries_total{${s}}[15m]) + rate(chatmail_push_failures_total{${s}}[15m]))`,
      for: "15m",
      severity: "warning",
      summary: `More than one in five push notifications from ${config.mailDomain} fail (notificationUrl unreachable?).`,
    },
    ...(config.acceptMail ? [noIncomingMail(config, s)] : []),
  ];
}

/**
 * No mail from other servers for a day. Left out while mail is off (acceptMail false: a server being set up for a
 * move), when none can arrive. The gauge is 0 until the first delivery after chatmaild starts: the second
 * condition keeps a restart from firing at once, and still fires on a relay that has received nothing for a day
 * since it started.
 */
function noIncomingMail(config: RelayConfig, s: string): AlertRule {
  return {
    alert: "ChatmailNoIncomingMail",
    expr:
      `time() - chatmail_last_incoming_delivery_timestamp_seconds{${s}} > ${NO_INCOMING_MAIL_HOURS * 3600} and ` +
      `time() - process_start_time_seconds{${s}} > ${NO_INCOMING_MAIL_HOURS * 3600}`,
    for: "30m",
    severity: "warning",
    summary: `No message from another server reached ${config.mailDomain} for ${NO_INCOMING_MAIL_HOURS} hours: check port 25, MX and DNS (npm run check).`,
  };
}

/** A YAML double-quoted scalar: the rules hold quotes and braces. */
const quoted = (s: string) => JSON.stringify(s);

/** The rules file (Prometheus rule_files format), byte-identical for identical config. */
export function alertRulesFile(config: RelayConfig): string {
  const lines = [
    `# Prometheus alerting rules for the chatmail relay ${config.mailDomain}, generated from its stack config.`,
    `# Scrape chatmaild's metrics with the label relay="${config.mailDomain}" (docs/alerts.md).`,
    "groups:",
    `  - name: ${quoted(`chatmail ${config.mailDomain}`)}`,
    "    rules:",
  ];
  for (const r of alertRules(config)) {
    lines.push(
      `      - alert: ${r.alert}`,
      `        expr: ${quoted(r.expr)}`,
      `        for: ${r.for}`,
      "        labels:",
      `          severity: ${r.severity}`,
      `          relay: ${quoted(config.mailDomain)}`,
      "        annotations:",
      `          summary: ${quoted(r.summary)}`,
    );
  }
  return lines.join("\n") + "\n";
}
