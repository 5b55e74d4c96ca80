// The stack program: one stack per relay domain. Reads the stack config, builds the relay, exports what an
// operator needs next (addresses, the zone file for manual DNS, onboarding and invite links).
import * as pulumi from "@pulumi/pulumi";
import { loadAssets } from "./components/assets";
import { Relay } from "./components/relay";
import { readStackConfig } from "./components/stackConfig";

const config = readStackConfig();
const relay = new Relay("relay", {
  config,
  assets: loadAssets({ wwwFolder: config.wwwFolder || undefined }),
  sshPrivateKey: pulumi.secret(config.sshPrivateKey!),
});

export const ipv4 = relay.ipv4;
export const ipv6 = relay.ipv6;
export const webUrl = relay.webUrl;
export const zoneFile = relay.zoneFile;
export const dcaccountLink = relay.dcaccountLink;
export const inviteLinks = relay.inviteLinks;
