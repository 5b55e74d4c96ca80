// What one changed option re-runs. A step whose hash changes is replaced by Pulumi (its command runs again);
// every other step keeps its inputs and runs nothing. So this table is exactly the remote work of `pulumi up`
// after `pulumi config set OPTION VALUE`, and the services listed are the only ones restarted.
import { describe, expect, it } from "vitest";
import { loadConfig, type RelayConfig } from "../../core/config";
import { planRelay } from "../../core/plan";
import { testAssets } from "../components/helpers";

const assets = testAssets();
const base = { mailDomain: "chat.example.org", tlsMode: "self-signed" };
const before = planRelay(loadConfig(base), assets);

function rerun(option: string, value: string | number | boolean): string[] {
  const after = planRelay(loadConfig({ ...base, [option]: value }), assets);
  const old = new Map(before.steps.map((s) => [s.id, s.hash]));
  return after.steps
    .filter((s) => old.get(s.id) !== s.hash)
    .map((s) => s.id)
    .sort();
}

const INI = "file:/usr/local/lib/chatmaild/chatmail.ini";
/** Runs only when the set of things the plan owns changes, never for a changed content. */
const PRUNE = "prune:unowned";
const DAEMONS = ["service:chatmaild.service"];
const DOVECOT = ["file:/etc/dovecot/dovecot.conf", "check:dovecot-config", "service:dovecot.service"];
const web = (...pages: string[]) => pages.map((p) => `file:/var/www/html/${p}.html`);

describe("a single changed option", () => {
  it.each<[keyof RelayConfig, string | number | boolean, string[]]>([
    ["maxUserSendPerMinute", 30, [INI, ...DAEMONS, ...web("info")]],
    [
      "maxMessageSize",
      1048576,
      [
        INI,
        ...DAEMONS,
        ...DOVECOT,
        ...web("info"),
        "file:/etc/postfix/main.cf",
        "check:postfix-config",
        "service:postfix.service",
      ],
    ],
    ["maxMailboxSize", "1G", [INI, ...DAEMONS, ...DOVECOT, ...web("info")]],
    ["passwordMinLength", 12, [INI, ...DAEMONS, ...web("info")]],
    ["languages", "EN RU", web("index", "info", "privacy")],
    ["privacyMail", "privacy@example.org", [...DOVECOT, ...web("info", "privacy")]],
    ["maxImapConnections", 500, DOVECOT],
    [
      "maxSmtpConnections",
      500,
      ["file:/etc/postfix/master.cf", "check:postfix-config", "service:postfix.service"],
    ],
    [
      "resolverForwarders",
      "192.0.2.53",
      [
        "file:/etc/unbound/unbound.conf.d/chatmail.conf",
        "file:/etc/resolv.conf",
        "check:unbound-config",
        "service:unbound.service",
        // OpenDKIM then looks keys up through unbound instead of resolving by itself.
        "file:/etc/opendkim.conf",
        "check:opendkim-config",
        "service:opendkim.service",
      ],
    ],
  ])("%s re-runs exactly its units and restarts only their services", (option, value, expected) => {
    expect(rerun(option, value)).toEqual([...expected].sort());
  });

  it("inviteTokens re-runs the daemons' config, the pages that change and adds the printable invites", () => {
    const changed = rerun("inviteTokens", "abcdefghijk");
    expect(changed).toEqual(
      [
        INI,
        ...DAEMONS,
        ...web("index", "info"),
        "dir:/root/chatmail-invites",
        "file:/root/chatmail-invites/invite-1.png",
        "file:/root/chatmail-invites/invite-1.txt",
        // The invite files are new things the plan owns, so the owned list changes.
        PRUNE,
      ].sort(),
    );
    const after = planRelay(loadConfig({ ...base, inviteTokens: "abcdefghijk" }), assets);
    // The open-registration QR code leaves the web root.
    expect(after.steps.some((s) => s.id.includes("qr-chatmail-invite"))).toBe(false);
  });

  it("re-runs nothing when nothing changed", () => {
    const again = planRelay(loadConfig(base), assets);
    expect(again.steps.map((s) => [s.id, s.hash])).toEqual(before.steps.map((s) => [s.id, s.hash]));
  });
});
