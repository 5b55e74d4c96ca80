// The relay on a new Hetzner server with DNS at Cloudflare, under the Pulumi mock runtime.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { relayRecords, rdata } from "../../core/dns";
import { planRelay } from "../../core/plan";
import { publicPorts } from "../../core/plan/facts";
import {
  byType,
  clearText,
  created,
  findCreated,
  invokes,
  isSecretInput,
  mocks,
  plain,
  runProgram,
  SERVER_ID,
  testAssets,
  valueOf,
} from "./helpers";

const KEY = "PRIVATE-KEY-SENTINEL";
const settings = {
  mailDomain: "chat.example.org",
  hostProvider: "hetzner",
  sshPublicKey: "ssh-ed25519 AAAAtest operator",
  sshPrivateKey: KEY,
  dnsProvider: "cloudflare",
  cloudflareZoneName: "example.org",
};
const config = loadConfig(settings);

beforeAll(async () => {
  await pulumi.runtime.setMocks(mocks, "chatmail-relay", "test", false);
  // The stack program itself (index.ts), not a copy of its wiring: the SSH key arrives as the stack file's
  // encrypted value, in clear text like runtime.getConfig returns it, and only the program makes it a secret.
  const outputs = await runProgram(settings, ["sshPrivateKey"]);
  await valueOf(outputs.zoneFile);
  await pulumi.runtime.disconnect();
});

const HOST = "chatmail:host:HetznerHost";

describe("HetznerHost", () => {
  it("keeps both addresses independent of the server and protected", () => {
    for (const family of ["ipv4", "ipv6"]) {
      const ip = findCreated("hcloud:index/primaryIp:PrimaryIp", `relay-host-${family}`);
      expect(ip.inputs).toMatchObject({
        type: family,
        autoDelete: false,
        deleteProtection: true,
        location: "fsn1",
      });
      expect(ip.protect).toBe(true);
    }
  });

  it("creates a Debian server with delete and rebuild protection that ignores replacing changes", () => {
    const server = findCreated("hcloud:index/server:Server", "relay-host-server");
    expect(server.inputs).toMatchObject({
      image: "debian-12",
      serverType: "cx23",
      location: "fsn1",
      deleteProtection: true,
      rebuildProtection: true,
    });
    expect(server.inputs.publicNets[0]).toMatchObject({
      ipv4Enabled: true,
      ipv4: 11,
      ipv6Enabled: true,
      ipv6: 12,
    });
    expect(typeof server.inputs.firewallIds[0]).toBe("number");
    expect(server.protect).toBe(true);
    expect(server.ignoreChanges).toEqual(["image", "userData", "sshKeys"]);
  });

  it("opens exactly the relay's ports in the firewall", () => {
    const rules = findCreated("hcloud:index/firewall:Firewall", "relay-host-firewall").inputs.rules as any[];
    const open = (protocol: string) =>
      rules
        .filter((r) => r.protocol === protocol)
        .map((r) => r.port as string)
        .sort((a, b) => parseInt(a) - parseInt(b));
    // 3478 is coturn's STUN and TURN (TCP and UDP); 49152-65535 its relay ports (turnServer is on by default).
    expect(open("tcp")).toEqual(["22", "25", "80", "143", "443", "465", "587", "993", "3478"]);
    expect(open("udp")).toEqual(["3478", "49152-65535"]);
    expect(publicPorts(config).udp).toEqual([3478]);
    expect(rules.every((r) => r.direction === "in")).toBe(true);
  });

  it("points reverse DNS of both address families at the mail domain", () => {
    const v4 = findCreated("hcloud:index/rdns:Rdns", "relay-host-rdns-ipv4").inputs;
    const v6 = findCreated("hcloud:index/rdns:Rdns", "relay-host-rdns-ipv6").inputs;
    expect(v4).toMatchObject({ dnsPtr: "chat.example.org", ipAddress: "203.0.113.10", primaryIpId: 11 });
    expect(v6).toMatchObject({ dnsPtr: "chat.example.org", ipAddress: "2001:db8::1", primaryIpId: 12 });
  });

  it("parents every host resource to the HetznerHost component", () => {
    for (const r of created.filter((c) => c.type.startsWith("hcloud:"))) expect(r.urn).toContain(`${HOST}$`);
  });
});

describe("CloudflareDns", () => {
  it("creates every record of the relay's record set, none proxied", async () => {
    const records = byType("cloudflare:index/dnsRecord:DnsRecord");
    const dkim = findCreated("command:remote:Command", "relay-read-dkim-public-key");
    expect(dkim).toBeDefined();
    const expected = relayRecords(config, {
      ipv4: "203.0.113.10",
      ipv6: "2001:db8::1",
      dkimPublicKey: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A" + "k".repeat(360),
      acmeAccountUrl: "",
    });
    expect(records.map((r) => `${r.inputs.type} ${r.inputs.name}`).sort()).toEqual(
      expected.map((r) => `${r.type} ${r.name}`).sort(),
    );
    for (const r of records) {
      expect(r.inputs.proxied, r.name).toBe(false);
      expect(r.inputs.zoneId).toBe("zone123");
    }
    const txt = records.find((r) => r.inputs.name === "opendkim._domainkey.chat.example.org")!;
    const dkimRecord = expected.find((r) => r.name === "opendkim._domainkey.chat.example.org")!;
    expect(txt.inputs.content).toBe(rdata(dkimRecord));
    const mx = records.find((r) => r.inputs.type === "MX")!;
    expect(mx.inputs).toMatchObject({ content: "chat.example.org", priority: 10 });
    const srv = records.find((r) => r.inputs.name === "_imaps._tcp.chat.example.org")!;
    expect(srv.inputs.data).toEqual({ priority: 0, weight: 1, port: 993, target: "chat.example.org" });
  });

  it("finds the zone by name", () => {
    expect(
      invokes.some(
        (i) => i.token === "cloudflare:index/getZone:getZone" && i.inputs.filter.name === "example.org",
      ),
    ).toBe(true);
  });
});

describe("ServerConfig on a Hetzner server", () => {
  it("reconfigures a replaced server: every command is triggered by the server id", () => {
    const commands = byType("command:remote:Command").filter((c) => c.name.startsWith("relay-config-"));
    // The program's plan has the real daemon bundle; the number of steps does not depend on its content.
    expect(commands.length).toBe(planRelay(config, testAssets()).steps.length);
    for (const c of commands) expect(plain(c.inputs.triggers)[1]).toBe(SERVER_ID);
  });

  it("never SSHes into a server that is being deleted", () => {
    const server = findCreated("hcloud:index/server:Server", "relay-host-server");
    for (const c of byType("command:remote:Command")) expect(c.deletedWith).toBe(server.urn);
  });

  it("keeps the SSH private key secret in every connection", () => {
    // `inputs` is what the engine receives (the registration request, deserialized with its secret envelopes).
    const commands = byType("command:remote:Command");
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
      expect(isSecretInput(c.inputs.connection), `${c.name}: connection is not a secret`).toBe(true);
      expect(plain(c.inputs.connection).privateKey).toBe(KEY);
    }
    for (const r of created) {
      expect(
        clearText(r.inputs).filter((s) => s.includes(KEY)),
        `${r.name}: the key in clear`,
      ).toEqual([]);
    }
  });
});
