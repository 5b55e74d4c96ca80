// The generated alert rules, judged by Prometheus's own promtool: `check rules` accepts the file, and
// `promtool test rules` feeds each alert series that must fire (with its labels and summary) and series that
// must not. promtool comes with Debian's prometheus package (.ci/debian-packages).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadConfig } from "../../core/config";
import { alertRules, alertRulesFile } from "../../core/metrics";

const config = loadConfig({
  mailDomain: "chat.example.org",
  minFreeDiskSpace: "2G",
  minAvailableMemory: "300M",
});
const RELAY = "chat.example.org";
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const target = { relay: RELAY, job: "chatmail", instance: "relay:9103" };
const dir = mkdtempSync(join(tmpdir(), "alerts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const summary = (alert: string, unit = "") =>
  alertRules(config)
    .find((r) => r.alert === alert)!
    .summary.replace("{{ $labels.unit }}", unit);
const series = (name: string, values: string, extra: Record<string, string> = {}) => ({
  series: `${name}{${Object.entries({ ...target, ...extra })
    .map(([k, v]) => `${k}="${v}"`)
    .join(",")}}`,
  values,
});
const firing = (alertname: string, severity: string, extra: Record<string, string> = {}) => ({
  exp_labels: { ...target, ...extra, severity, relay: RELAY },
  exp_annotations: { summary: summary(alertname, extra.unit) },
});
const at = (eval_time: string, alertname: string, exp_alerts: unknown[]) => ({
  eval_time,
  alertname,
  exp_alerts,
});

/** One promtool test per alert: input series, then when it must (not) fire. */
const TESTS = [
  {
    input_series: [series("up", "0x10")],
    alert_rule_test: [
      at("3m", "ChatmailMetricsDown", []),
      at("6m", "ChatmailMetricsDown", [firing("ChatmailMetricsDown", "critical")]),
    ],
  },
  {
    input_series: [
      series("chatmail_unit_active", "0x10", { unit: "postfix.service" }),
      series("chatmail_unit_active", "1x10", { unit: "dovecot.service" }),
    ],
    alert_rule_test: [
      at("6m", "ChatmailUnitDown", [firing("ChatmailUnitDown", "critical", { unit: "postfix.service" })]),
    ],
  },
  {
    // 1.2 × minFreeDiskSpace: near the limit (warning after 10 minutes), not below it.
    input_series: [series("chatmail_disk_free_bytes", `${1.2 * 2 * GiB}x20`)],
    alert_rule_test: [
      at("5m", "ChatmailDiskNearLimit", []),
      at("11m", "ChatmailDiskNearLimit", [firing("ChatmailDiskNearLimit", "warning")]),
      at("11m", "ChatmailDiskBelowLimit", []),
    ],
  },
  {
    input_series: [series("chatmail_disk_free_bytes", `${0.5 * 2 * GiB}x20`)],
    alert_rule_test: [at("6m", "ChatmailDiskBelowLimit", [firing("ChatmailDiskBelowLimit", "critical")])],
  },
  {
    // 2 × the threshold is healthy.
    input_series: [
      series("chatmail_disk_free_bytes", `${2 * 2 * GiB}x20`),
      series("chatmail_memory_available_bytes", `${2 * 300 * MiB}x20`),
    ],
    alert_rule_test: [at("15m", "ChatmailDiskNearLimit", []), at("15m", "ChatmailMemoryNearLimit", [])],
  },
  {
    input_series: [series("chatmail_memory_available_bytes", `${1.2 * 300 * MiB}x20`)],
    alert_rule_test: [
      at("11m", "ChatmailMemoryNearLimit", [firing("ChatmailMemoryNearLimit", "warning")]),
      at("11m", "ChatmailMemoryBelowLimit", []),
    ],
  },
  {
    input_series: [series("chatmail_memory_available_bytes", `${100 * MiB}x20`)],
    alert_rule_test: [at("6m", "ChatmailMemoryBelowLimit", [firing("ChatmailMemoryBelowLimit", "critical")])],
  },
  {
    // Expiry 10 days after time 0 fires after an hour; 30 days does not.
    input_series: [series("chatmail_certificate_expiry_timestamp_seconds", `${10 * 86400}x70`)],
    alert_rule_test: [
      at("30m", "ChatmailCertificateExpiresSoon", []),
      at("61m", "ChatmailCertificateExpiresSoon", [firing("ChatmailCertificateExpiresSoon", "critical")]),
    ],
  },
  {
    input_series: [series("chatmail_certificate_expiry_timestamp_seconds", `${30 * 86400}x70`)],
    alert_rule_test: [at("61m", "ChatmailCertificateExpiresSoon", [])],
  },
  {
    // One more queued message a minute from 10: over 20 after 11 minutes, growing; fires 30 minutes later.
    input_series: [series("chatmail_postfix_queue_messages", "10+1x60")],
    alert_rule_test: [
      at("20m", "ChatmailMailQueueGrowing", []),
      at("45m", "ChatmailMailQueueGrowing", [firing("ChatmailMailQueueGrowing", "warning")]),
    ],
  },
  {
    // A large but steady queue is not growing.
    input_series: [series("chatmail_postfix_queue_messages", "100x60")],
    alert_rule_test: [at("45m", "ChatmailMailQueueGrowing", [])],
  },
  {
    input_series: [series("chatmail_postfix_queue_oldest_age_seconds", "25000x30")],
    alert_rule_test: [at("16m", "ChatmailMailQueueStale", [firing("ChatmailMailQueueStale", "warning")])],
  },
  {
    // A third of the pushes fail: fires; a tenth: does not.
    input_series: [
      series("chatmail_push_failures_total", "0+3x60"),
      series("chatmail_push_deliveries_total", "0+6x60"),
    ],
    alert_rule_test: [
      at("35m", "ChatmailPushFailuresRising", [firing("ChatmailPushFailuresRising", "warning")]),
    ],
  },
  {
    input_series: [
      series("chatmail_push_failures_total", "0+1x60"),
      series("chatmail_push_deliveries_total", "0+9x60"),
    ],
    alert_rule_test: [at("35m", "ChatmailPushFailuresRising", [])],
  },
  {
    // The last accepted incoming message at time 0: quiet after 24 hours, alert 30 minutes later.
    input_series: [
      series("chatmail_last_incoming_delivery_timestamp_seconds", "0x1600"),
      series("process_start_time_seconds", "0x1600"),
    ],
    alert_rule_test: [
      at("23h", "ChatmailNoIncomingMail", []),
      at("25h", "ChatmailNoIncomingMail", [firing("ChatmailNoIncomingMail", "warning")]),
    ],
  },
  {
    // chatmaild restarted at 23 h (the gauge starts again at 0): no alert two hours later.
    input_series: [
      series("chatmail_last_incoming_delivery_timestamp_seconds", "0x1600"),
      series("process_start_time_seconds", `0x1380 ${23 * 3600}x220`),
    ],
    alert_rule_test: [at("25h", "ChatmailNoIncomingMail", [])],
  },
];

describe("alert rules", () => {
  const rulesPath = join(dir, "chatmail.rules.yml");
  writeFileSync(rulesPath, alertRulesFile(config));

  it("pass promtool check rules", () => {
    const out = execFileSync("promtool", ["check", "rules", rulesPath], { encoding: "utf8" });
    expect(out).toContain(`SUCCESS: ${alertRules(config).length} rules found`);
  });

  it("fire, and stay quiet, as promtool test rules expects for every alert", () => {
    const covered = new Set(TESTS.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    expect([...covered].sort()).toEqual(
      alertRules(config)
        .map((r) => r.alert)
        .sort(),
    );
    const testPath = join(dir, "chatmail.test.yml");
    writeFileSync(
      testPath,
      stringify({
        rule_files: [rulesPath],
        evaluation_interval: "1m",
        tests: TESTS.map((t) => ({ interval: "1m", ...t })),
      }),
    );
    const out = execFileSync("promtool", ["test", "rules", testPath], { encoding: "utf8" });
    expect(out).toContain("SUCCESS");
  });

  it("leave out the no-incoming-mail alert while mail is off (acceptMail false), and only that one", () => {
    const names = (c: typeof config) => alertRules(c).map((r) => r.alert);
    const off = loadConfig({ mailDomain: "chat.example.org", acceptMail: false });
    expect(names(config)).toContain("ChatmailNoIncomingMail");
    expect(names(off)).toEqual(names(config).filter((n) => n !== "ChatmailNoIncomingMail"));
  });

  it("take their thresholds from the config and are byte-identical for identical config", () => {
    const text = alertRulesFile(config);
    expect(text).toContain(`chatmail_disk_free_bytes{relay=\\"chat.example.org\\"} < ${2 * GiB}`);
    expect(text).toContain(`chatmail_memory_available_bytes{relay=\\"chat.example.org\\"} < ${300 * MiB}`);
    expect(
      alertRulesFile(
        loadConfig({ mailDomain: "chat.example.org", minFreeDiskSpace: "2G", minAvailableMemory: "300M" }),
      ),
    ).toBe(text);
  });
});
