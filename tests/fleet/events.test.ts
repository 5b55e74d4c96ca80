// Engine events as one readable line each, and outputs, with every secret masked.
import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import {
  eventLine,
  oneLine,
  outputLine,
  resourceName,
  secretMasker,
  shownOutput,
} from "../../tools/fleet/events";

const URN = (type: string, name: string) =>
  `urn:pulumi:relay-a::chatmail-relay::chatmail:index:Relay$${type}::${name}`;
const meta = (op: StepEventMetadata["op"], name: string, type = "command:remote:Command", extra = {}) =>
  ({ op, urn: URN(type, name), type, provider: "", ...extra }) as StepEventMetadata;
const ev = (e: Partial<EngineEvent>): EngineEvent => ({ sequence: 1, timestamp: 0, ...e });

describe("eventLine", () => {
  it("names the step and its outcome: planned in a preview, started and done in an up", () => {
    const step = meta("update", "relay-config-file:/etc/postfix/main.cf", undefined, { diffs: ["triggers"] });
    expect(eventLine(ev({ resourcePreEvent: { metadata: step, planning: true } }))).toBe(
      "update relay-config-file:/etc/postfix/main.cf (planned; changes triggers)",
    );
    expect(eventLine(ev({ resourcePreEvent: { metadata: step } }))).toBe(
      "update relay-config-file:/etc/postfix/main.cf (started; changes triggers)",
    );
    expect(eventLine(ev({ resOutputsEvent: { metadata: step } }))).toBe(
      "update relay-config-file:/etc/postfix/main.cf (updated)",
    );
    expect(eventLine(ev({ resOutputsEvent: { metadata: meta("create", "relay-host") } }))).toBe(
      "create relay-host (created)",
    );
    expect(
      eventLine(
        ev({ resOpFailedEvent: { metadata: meta("create", "relay-config-check:os"), status: 1, steps: 0 } }),
      ),
    ).toBe("create relay-config-check:os (failed)");
  });

  it("shows a replacement (create-replacement, replace, delete-replaced) as one replace", () => {
    const name = "relay-config-file:/usr/local/lib/chatmaild/chatmail.ini";
    const steps = (["create-replacement", "replace", "delete-replaced"] as const).map((op) =>
      meta(op, name, undefined, { diffs: ["triggers"] }),
    );
    const up = steps.flatMap((m) => [
      eventLine(ev({ resourcePreEvent: { metadata: m } })),
      eventLine(ev({ resOutputsEvent: { metadata: m } })),
    ]);
    expect(up.filter((l) => l !== undefined)).toEqual([
      `replace ${name} (started; changes triggers)`,
      `replace ${name} (replaced)`,
    ]);
    const preview = steps.flatMap((m) => [
      eventLine(ev({ resourcePreEvent: { metadata: m, planning: true } })),
      eventLine(ev({ resOutputsEvent: { metadata: m, planning: true } })),
    ]);
    expect(preview.filter((l) => l !== undefined)).toEqual([`replace ${name} (planned; changes triggers)`]);
    expect(eventLine(ev({ resOpFailedEvent: { metadata: steps[0], status: 1, steps: 0 } }))).toBe(
      `replace ${name} (failed)`,
    );
  });

  it("shows nothing for unchanged resources, the stack, providers, a preview's outputs events or the prelude", () => {
    expect(
      eventLine(ev({ resourcePreEvent: { metadata: meta("same", "relay-config-file:/etc/x") } })),
    ).toBeUndefined();
    expect(
      eventLine(ev({ resOutputsEvent: { metadata: meta("same", "relay-config-file:/etc/x") } })),
    ).toBeUndefined();
    expect(
      eventLine(ev({ resOutputsEvent: { metadata: meta("update", "x"), planning: true } })),
    ).toBeUndefined();
    expect(
      eventLine(
        ev({
          resourcePreEvent: { metadata: meta("create", "chatmail-relay-relay-a", "pulumi:pulumi:Stack") },
        }),
      ),
    ).toBeUndefined();
    expect(
      eventLine(
        ev({ resourcePreEvent: { metadata: meta("create", "default_1_2_1", "pulumi:providers:command") } }),
      ),
    ).toBeUndefined();
    expect(
      eventLine(ev({ preludeEvent: { config: { "chatmail-relay:sshPrivateKey": "[secret]" } } })),
    ).toBeUndefined();
    expect(eventLine(ev({ cancelEvent: {} }))).toBeUndefined();
  });

  it("folds a diagnostic onto one line with its severity and resource, and leaves out debug and ephemeral ones", () => {
    const d = (
      severity: "info" | "info#err" | "warning" | "error" | "debug",
      message: string,
      urn?: string,
    ) =>
      ev({
        diagnosticEvent: {
          severity,
          message,
          color: "never",
          ...(urn ? { urn } : {}),
        } as EngineEvent["diagnosticEvent"],
      });
    expect(
      eventLine(
        d("error", "after 30 failed attempts:\n  dial tcp 127.0.0.1:22\n", URN("x", "relay-host-read")),
      ),
    ).toBe("error relay-host-read: after 30 failed attempts: | dial tcp 127.0.0.1:22");
    expect(eventLine(d("warning", "<{%fg 3%}>using plugin from $PATH<{%reset%}>\n"))).toBe(
      "warning: using plugin from $PATH",
    );
    expect(eventLine(d("info#err", "to stderr"))).toBe("info: to stderr");
    expect(eventLine(d("debug", "RegisterResource RPC finished: privateKey=..."))).toBeUndefined();
    expect(eventLine(d("info", "   \n"))).toBeUndefined();
    const ephemeral = ev({
      diagnosticEvent: { severity: "info", message: "progress", color: "never", ephemeral: true },
    });
    expect(eventLine(ephemeral)).toBeUndefined();
  });

  it("sums up the summary event", () => {
    const summary = ev({
      summaryEvent: {
        maybeCorrupt: false,
        durationSeconds: 12,
        resourceChanges: { same: 100, update: 2 },
        policyPacks: {},
      },
    });
    expect(eventLine(summary)).toBe("summary: 2 update (100 unchanged) in 12 s");
  });

  it("masks every known secret value in the line", () => {
    const key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";
    const mask = secretMasker([key, "tok123456789", "short"]);
    const d = (message: string) => ev({ diagnosticEvent: { severity: "error", message, color: "never" } });
    const line = eventLine(
      d(`ssh: bad key b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ for token tok123456789`),
      mask,
    );
    expect(line).toBe("error: ssh: bad key [secret] for token [secret]");
    expect(eventLine(d(key), mask)).not.toContain("b3Blbn");
    // Secrets too short to search for are left alone rather than masking ordinary words.
    expect(eventLine(d("a short line"), mask)).toBe("error: a short line");
  });
});

describe("outputs", () => {
  it("shows a secret output as [secret], whatever it holds", () => {
    expect(shownOutput({ value: ["dcaccount:https://chat.example.org/new?tok123456"], secret: true })).toBe(
      "[secret]",
    );
    expect(
      outputLine("inviteLinks", {
        value: ["dcaccount:https://chat.example.org/new?tok123456"],
        secret: true,
      }),
    ).toBe("inviteLinks = [secret]");
    expect(shownOutput({ value: "https://chat.example.org/", secret: false })).toBe(
      "https://chat.example.org/",
    );
  });

  it("shows a value on one line: a multi-line text as its first line and line count", () => {
    expect(outputLine("webUrl", { value: "https://chat.example.org/", secret: false })).toBe(
      "webUrl = https://chat.example.org/",
    );
    expect(
      outputLine("zoneFile", { value: "chat.example.org. 3600 IN A 192.0.2.1\nb\nc\n", secret: false }),
    ).toBe("zoneFile = chat.example.org. 3600 IN A 192.0.2.1 … (3 lines)");
    expect(outputLine("n", { value: { a: 1 }, secret: false })).toBe('n = {"a":1}');
  });

  it("masks a secret that appears inside a plain output", () => {
    const mask = secretMasker(["tok123456789"]);
    expect(outputLine("link", { value: "https://x/new?tok123456789", secret: false }, mask)).toBe(
      "link = https://x/new?[secret]",
    );
  });
});

describe("helpers", () => {
  it("takes the resource name from a URN, also one whose name holds colons and slashes", () => {
    expect(resourceName(URN("command:remote:Command", "relay-config-line:/etc/environment:TZ="))).toBe(
      "relay-config-line:/etc/environment:TZ=",
    );
  });

  it("clips a long line", () => {
    expect(oneLine("x".repeat(50), 10)).toBe(`${"x".repeat(9)}…`);
    expect(oneLine("\u001b[31mred\u001b[0m")).toBe("red");
  });
});
