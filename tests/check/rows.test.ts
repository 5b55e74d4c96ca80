// The table: one line per row, advice under each non-ok row, a count line; the exit code follows failures only.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config";
import { checkAccount } from "../../tools/check/roundtrip";
import { exitCode, fail, ok, renderTable, warn } from "../../tools/check/rows";

describe("table", () => {
  const rows = [
    ok("dns", "A chat.example.org", "192.0.2.1"),
    warn("dns", "SRV _imap._tcp.chat.example.org", "expected x;\nns has nothing", "publish it"),
    fail("server", "unit dovecot.service", "inactive", "start it"),
  ];
  it("prints advice only for non-ok rows, on one line each", () => {
    const text = renderTable(rows);
    expect(text.split("\n")[0]).toMatch(/^GROUP\s+CHECK\s+STATUS\s+DETAIL$/);
    expect(text).toContain("expected x; ns has nothing");
    expect(text).toMatch(/-> publish it\n/);
    expect(text).toMatch(/-> start it\n/);
    expect(text.match(/->/g)).toHaveLength(2);
    expect(text.trimEnd().split("\n").pop()).toBe("1 ok, 1 warn, 1 fail");
  });

  it("exits 1 only when a row failed", () => {
    expect(exitCode(rows)).toBe(1);
    expect(exitCode(rows.slice(0, 2))).toBe(0);
  });
});

describe("check account", () => {
  it("is the same for the same secret, within the relay's limits, and carries the invite token", () => {
    const config = loadConfig({ mailDomain: "chat.example.org", inviteTokens: ["tok123456"] });
    const a = checkAccount(config, "secret");
    expect(checkAccount(config, "secret")).toEqual(a);
    expect(checkAccount(config, "other").addr).not.toBe(a.addr);
    const local = a.addr.split("@")[0];
    expect(local.length).toBeGreaterThanOrEqual(config.usernameMinLength);
    expect(local.length).toBeLessThanOrEqual(config.usernameMaxLength);
    expect(a.password.startsWith("tok123456")).toBe(true);
    expect(a.password.length).toBeGreaterThanOrEqual(config.passwordMinLength);
  });
});
