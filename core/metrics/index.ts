export {
  alertRules,
  alertRulesFile,
  CERT_ALERT_DAYS,
  NO_INCOMING_MAIL_HOURS,
  type AlertRule,
} from "./alerts";
