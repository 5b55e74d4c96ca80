// The server rows from what the server script prints: sections parsed, each verdict with its threshold. The
// script itself runs against a real server in the federation testbed.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { parseReport, serverRows, serverScript, type ServerReport } from "../../tools/check/server";

const config = loadConfig({
  mailDomain: "chat.example.org",
  minFreeDiskSpace: "1G",
  minAvailableMemory: "200M",
});
const NOW = Date.parse("2026-12-03T12:00:00Z");
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

const output = (over: Partial<Record<string, string>> = {}) =>
  Object.entries({
    units:
      "postfix.service active notify success\ndovecot.service active notify success\nacmetool.service inactive oneshot success",
    failed: "",
    queue: "",
    disk: String(10 * 1024 * 1024),
    memory: String(800 * 1024),
    version: `${COMMIT}\nchatmail-relay 0.1.0`,
    lastdeploy: "2026-12-03T10:00:00Z",
    accounts: "42",
    nocreate: "no",
    dkim: "MIIBIjANBgkq",
    acme: "https://acme.example.net/acct/1",
    outgoing25: "220",
    ...over,
  })
    .map(([k, v]) => `== ${k}\n${v}`)
    .join("\n");

const rows = (over: Partial<Record<string, string>> = {}, c = config) =>
  serverRows(parseReport(output(over)), { config: c, commit: COMMIT, probeHost: "mx.example.net", now: NOW });
const nonOk = (over: Partial<Record<string, string>>) =>
  rows(over)
    .filter((r) => r.status !== "ok")
    .map((r) => [r.check, r.status]);

describe("server report", () => {
  it("parses every section", () => {
    const r: ServerReport = parseReport(output());
    expect(r).toMatchObject({
      units: [
        { name: "postfix.service", state: "active", type: "notify", result: "success" },
        { name: "dovecot.service", state: "active", type: "notify", result: "success" },
        { name: "acmetool.service", state: "inactive", type: "oneshot", result: "success" },
      ],
      diskFreeKb: 10 * 1024 * 1024,
      accounts: 42,
      nocreate: false,
      dkimPublicKey: "MIIBIjANBgkq",
    });
  });

  it("refuses an answer that lacks a section", () => {
    expect(() => parseReport("== units\n")).toThrow(/lacks failed, queue/);
  });

  it("writes a script with one section per fact and the units quoted", () => {
    const script = serverScript({
      units: ["a b.service"],
      mailboxesDir: "/home/vmail/mail/x",
      probeHost: "h;rm",
    });
    expect(script).toContain("for u in 'a b.service'; do");
    expect(script).toContain("/dev/tcp/hrm/25");
    expect(script.match(/^echo '== /gm)).toHaveLength(12);
  });
});

describe("server rows", () => {
  it("are all ok on a healthy server", () => {
    expect(nonOk({})).toEqual([]);
    const creation = rows().find((r) => r.check === "account creation")!;
    expect(creation.detail).toBe("open");
  });

  it("fail exactly the stopped unit", () => {
    expect(
      nonOk({ units: "postfix.service active notify success\ndovecot.service inactive notify success" }),
    ).toEqual([["unit dovecot.service", "fail"]]);
  });

  it("accept an idle one-shot service whose last run succeeded, and fail one whose run failed", () => {
    expect(nonOk({ units: "acmetool.service inactive oneshot success" })).toEqual([]);
    expect(nonOk({ units: "acmetool.service failed oneshot exit-code" })).toEqual([
      ["unit acmetool.service", "fail"],
    ]);
  });

  it("judge disk and memory against the refusal thresholds", () => {
    expect(nonOk({ disk: String(1500 * 1024) })).toEqual([["disk free", "warn"]]);
    expect(nonOk({ disk: String(900 * 1024) })).toEqual([["disk free", "fail"]]);
    expect(nonOk({ memory: String(100 * 1024) })).toEqual([["memory available", "fail"]]);
  });

  it("warn about an old queue entry and name its reason", () => {
    const old = JSON.stringify({
      arrival_time: NOW / 1000 - 7200,
      recipients: [{ address: "a@b", delay_reason: "connect to b: Connection timed out" }],
    });
    const row = rows({ queue: old }).find((r) => r.check === "mail queue")!;
    expect(row.status).toBe("warn");
    expect(row.detail).toContain("1 message, oldest 120 min: connect to b: Connection timed out");
  });

  it("say when the server runs another commit, and when creation is stopped or invite-only", () => {
    expect(nonOk({ version: "ffff\nchatmail-relay 0.0.9" })).toEqual([["deployed version", "warn"]]);
    expect(rows({ nocreate: "yes" }).find((r) => r.check === "account creation")!.detail).toMatch(/^stopped/);
    const invited = loadConfig({ mailDomain: "chat.example.org", inviteTokens: ["token0001", "token0002"] });
    expect(rows({}, invited).find((r) => r.check === "account creation")!.detail).toBe(
      "invite-only (2 tokens)",
    );
  });

  it("fail a blocked outgoing port 25 and say what Hetzner does", () => {
    const row = rows({ outgoing25: " (exit 124)" }).find((r) => r.check === "outgoing port 25")!;
    expect(row.status).toBe("fail");
    expect(row.advice).toContain("Hetzner blocks outgoing port 25 on new accounts");
  });

  it("fail failed units", () => {
    expect(nonOk({ failed: "acmetool.service" })).toEqual([["failed units", "fail"]]);
  });
});
