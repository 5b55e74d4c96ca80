// The stack program: one stack per relay domain. Reads the stack config, builds the relay, exports what an
// operator needs next (addresses, the zone file for manual DNS, onboarding and invite links).
import * as pulumi from "@pulumi/pulumi";
import { loadAssets } from "./components/assets";
import { Relay } from "./components/relay";
import { readStackConfig } from "./components/stackConfig";
import { alertRulesFile } from "./core/metrics";

const config = readStackConfig();
const relay = new Relay("relay", {
  config,
  assets: loadAssets(config),
  sshPrivateKey: pulumi.secret(config.sshPrivateKey!),
});

// An output without a value (ipv6 of an IPv4-only host) is left out rather than exported empty.
export = {
  ipv4: relay.ipv4,
  ...(relay.hasIpv6 ? { ipv6: relay.ipv6 } : {}),
  webUrl: relay.webUrl,
  zoneFile: relay.zoneFile,
  // Load into Prometheus: `pulumi stack output alertRules > chatmail.rules.yml` (docs/alerts.md).
  alertRules: alertRulesFile(config),
  dcaccountLink: relay.dcaccountLink,
  ...(config.inviteTokens.length > 0 ? { inviteLinks: relay.inviteLinks } : {}),
};
