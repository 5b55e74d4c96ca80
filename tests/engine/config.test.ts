// The real CLI's config validation on stacks that set only what the README asks for, for each host/DNS
// combination: Pulumi refuses a stack that lacks any key Pulumi.yaml declares without a default ("missing
// configuration values"), before the program runs. Each stack must get past that and have the program register
// the relay; only what needs a cloud (a provider plugin, credentials) may stop it there.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Engine, type ConfigValue } from "../e2e/engine";

const dir = mkdtempSync(join(tmpdir(), "engine-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const engine = new Engine(dir, () => {});

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n";

// README, "For operators": the commands of sections 2 to 4 for each choice.
const HOSTS: Record<string, Record<string, ConfigValue>> = {
  hetzner: {
    hostProvider: "hetzner",
    sshPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample operator@laptop",
  },
  existing: { hostProvider: "existing", hostAddress: "203.0.113.10", sshUser: "root" },
};
const DNS: Record<string, Record<string, ConfigValue>> = {
  cloudflare: { dnsProvider: "cloudflare", cloudflareZoneName: "example.org" },
  none: { dnsProvider: "none" },
};

describe("pulumi preview of a stack with only the README's settings", () => {
  for (const [host, hostConfig] of Object.entries(HOSTS)) {
    for (const [dns, dnsConfig] of Object.entries(DNS)) {
      it(`${host} host, ${dns} DNS: passes config validation and runs the program`, async () => {
        const stack = await engine.stack(`${host}-${dns}`);
        await stack.configure(
          { mailDomain: "chat.example.org", ...hostConfig, ...dnsConfig },
          { sshPrivateKey: KEY },
        );
        const result = await engine.pulumi(["preview", "--stack", stack.name], { allowFail: true });
        const output = result.stdout + result.stderr;
        expect(output).not.toMatch(/missing configuration value/);
        expect(output).not.toMatch(/validating stack config/);
        // The program ran past its own config checks: it registered the relay, or (Cloudflare) it asked the
        // engine for the cloudflare provider to look up the zone, which it does first.
        expect(output).toMatch(
          dns === "cloudflare" ? /pulumi-resource-cloudflare/ : /chatmail:index:Relay relay create/,
        );
        if (host === "existing" && dns === "none") {
          // Nothing here needs a cloud: the whole preview succeeds with the command plugin alone.
          expect(result.code, output).toBe(0);
        } else {
          // The cloud providers' plugins are not on these machines; that, and nothing else, stops the preview.
          expect(result.code).not.toBe(0);
          expect(output).toMatch(/no resource plugin 'pulumi-resource-(hcloud|cloudflare)'/);
        }
      });
    }
  }
});

describe("invite tokens in the stack config", () => {
  const base = { mailDomain: "chat.example.org", ...HOSTS.existing, ...DNS.none };

  it("are accepted encrypted (pulumi config set --secret --path 'inviteTokens[0]')", async () => {
    const stack = await engine.stack("tokens-secret");
    await stack.configure(base, { sshPrivateKey: KEY, inviteTokens: ["tok-en-123456"] });
    const result = await engine.pulumi(["preview", "--stack", stack.name], { allowFail: true });
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it("are refused in plain text, naming the option and the command that encrypts them", async () => {
    const stack = await engine.stack("tokens-plain");
    await stack.configure({ ...base, inviteTokens: ["tok-en-123456"] }, { sshPrivateKey: KEY });
    const result = await engine.pulumi(["preview", "--stack", stack.name], { allowFail: true });
    const output = result.stdout + result.stderr;
    expect(result.code).not.toBe(0);
    expect(output).toContain("inviteTokens: must be encrypted");
    expect(output).toContain("pulumi config set --secret --path 'inviteTokens[0]'");
    // The refused value itself is not echoed.
    expect(output).not.toContain("tok-en-123456");
  });
});
