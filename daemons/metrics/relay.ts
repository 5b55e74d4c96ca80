// The relay's own metrics (docs/metrics.md): the counters the daemons move as they work, and the gauges they set.
// The names are a contract with dashboards and alert rules: do not rename. Every label takes only the values
// declared here, so the set of series is fixed and small (no addresses, no client IPs, ever).
import { createLogger } from "../dictproxy/log";
import { VERDICT_RULES } from "../filtermail/verdict";
import { combos, Registry, type Counter, type Gauge, type Labels } from "./registry";

/** Why an account was not created: the `reason` label of chatmail_account_creation_refusals_total. */
export const REFUSAL_REASONS = [
  "invite",
  "rate_limit",
  "load",
  "memory",
  "disk",
  "nocreate",
  "invalid",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Where an account was created (`via`): at its first login (doveauth) or handed out by /new (newaccount). */
export const CREATION_VIAS = ["login", "new"] as const;

export interface RelayMetrics {
  readonly registry: Registry;
  readonly accountCreations: Counter;
  readonly creationRefusals: Counter;
  readonly logins: Counter;
  readonly filterVerdicts: Counter;
  readonly rateLimitHits: Counter;
  readonly pushDeliveries: Counter;
  readonly pushFailures: Counter;
  readonly pushRetryQueue: Gauge;
  readonly lastIncomingDelivery: Gauge;
}

/** Every (direction, verdict, rule) the filter can give. */
function verdictSeries(): Labels[] {
  return (["outgoing", "incoming"] as const).flatMap((direction) =>
    (["accepted", "refused"] as const).flatMap((verdict) =>
      VERDICT_RULES[direction][verdict].map((rule) => ({ direction, verdict, rule })),
    ),
  );
}

/** A fresh set of the relay's metrics in a registry of their own. */
export function relayMetrics(warn: (message: string) => void = () => {}): RelayMetrics {
  const registry = new Registry(warn);
  const lastIncomingDelivery = registry.gauge(
    "chatmail_last_incoming_delivery_timestamp_seconds",
    "Unix time of the last message the incoming filter accepted and Postfix's re-injection listener took; 0 until the first since the start.",
  );
  lastIncomingDelivery.set(0);
  const pushRetryQueue = registry.gauge(
    "chatmail_push_retry_queue",
    "Push notifications waiting for a retry or being retried (their first try failed).",
  );
  pushRetryQueue.set(0);
  return {
    registry,
    accountCreations: registry.counter(
      "chatmail_account_creations_total",
      "Accounts created: via login, at the first login (doveauth); via new, credentials handed out by /new (newaccount).",
      { series: combos({ via: CREATION_VIAS }) },
    ),
    creationRefusals: registry.counter(
      "chatmail_account_creation_refusals_total",
      "Account creations refused or delayed, by reason (doveauth and /new).",
      { series: combos({ reason: REFUSAL_REASONS }) },
    ),
    logins: registry.counter(
      "chatmail_logins_total",
      "doveauth passdb lookups (one per login): ok, the account was found or created and Dovecot checks the password; failed, no account (refused creation, another domain, a bad request).",
      { series: combos({ result: ["ok", "failed"] }) },
    ),
    filterVerdicts: registry.counter(
      "chatmail_filter_verdicts_total",
      "Messages the encryption filter decided on at the end of DATA, by direction, verdict and the rule that decided.",
      { series: verdictSeries() },
    ),
    rateLimitHits: registry.counter(
      "chatmail_rate_limit_hits_total",
      "MAIL FROM commands the outgoing filter refused with 450 because the sender was over maxUserSendPerMinute.",
    ),
    pushDeliveries: registry.counter(
      "chatmail_push_deliveries_total",
      "Push notifications the notification server accepted (HTTP 200).",
    ),
    pushFailures: registry.counter(
      "chatmail_push_failures_total",
      "Push notification tries that failed (another HTTP status than 200 or 410, or no answer); each is retried or, when out of tries, dropped.",
    ),
    pushRetryQueue,
    lastIncomingDelivery,
  };
}

/** The process's own metrics, which the daemons move unless a test gives them a set of their own. */
export const METRICS: RelayMetrics = relayMetrics((message) => createLogger("chatmaild").warn(message));
