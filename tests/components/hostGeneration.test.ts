// hostGeneration: a server reinstalled at the same address is configured from scratch only when the operator
// raises it; generation 0 keeps the server id every existing stack has, so upgrading re-runs nothing.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../core/config";
import { Relay } from "../../components/relay";
import { byType, mocks, plain, testAssets, valueOf } from "./helpers";

const base = {
  mailDomain: "chat.example.org",
  hostProvider: "existing",
  hostAddress: "198.51.100.7",
  sshPrivateKey: "PRIVATE-KEY-SENTINEL",
  dnsProvider: "none",
  tlsMode: "self-signed",
};
const assets = testAssets();

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, "chatmail-relay", "test", false);
  const key = pulumi.secret("PRIVATE-KEY-SENTINEL");
  for (const [name, generation] of [
    ["first", 0],
    ["same", 0],
    ["reinstalled", 1],
  ] as const) {
    const relay = new Relay(name, {
      config: loadConfig({ ...base, hostGeneration: generation }),
      assets,
      sshPrivateKey: key,
    });
    await valueOf(relay.zoneFile);
  }
  await pulumi.runtime.disconnect();
});

/** Each command of the relay by its name without the relay's prefix, with its triggers. */
function triggers(relay: string): Map<string, string> {
  return new Map(
    byType("command:remote:Command")
      .filter((c) => c.name.startsWith(`${relay}-`))
      .map((c) => [c.name.slice(relay.length + 1), JSON.stringify(plain(c.inputs.triggers))]),
  );
}

describe("hostGeneration", () => {
  it("0 keeps the server id of a stack from before the option (existing:ADDRESS)", () => {
    const first = triggers("first");
    expect(first.get("config-prune:unowned")).toContain('"existing:198.51.100.7"');
    expect(triggers("same")).toEqual(first);
  });

  it("raised, changes the triggers of every server step and read-back, so pulumi up runs them all again", () => {
    const first = triggers("first");
    const reinstalled = triggers("reinstalled");
    expect([...reinstalled.keys()].sort()).toEqual([...first.keys()].sort());
    const unchanged = [...first].filter(([name, t]) => reinstalled.get(name) === t).map(([name]) => name);
    expect(unchanged).toEqual([]);
    expect(reinstalled.get("config-prune:unowned")).toContain('"existing:198.51.100.7#1"');
  });

  it("is refused with a Hetzner server, which is a new server by itself when replaced", () => {
    expect(() => loadConfig({ mailDomain: "chat.example.org", hostGeneration: 1 })).toThrow(ConfigError);
    expect(() => loadConfig({ mailDomain: "chat.example.org", hostGeneration: 1 })).toThrow(/hostGeneration/);
    expect(() => loadConfig({ ...base, hostGeneration: -1 })).toThrow(/hostGeneration/);
  });
});
