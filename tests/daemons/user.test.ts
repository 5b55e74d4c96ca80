import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { resourceShortage } from "../../daemons/doveauth/syslimits";
import {
  accountFor,
  readPasswordHash,
  setPassword,
  userdbRecord,
  writeFileAtomic,
} from "../../daemons/doveauth/user";
import { DOMAIN, tempRelay } from "./helpers";

describe("account files", () => {
  it("reads no account and logs nothing when there is no password file", () => {
    const relay = tempRelay();
    const log = memoryLogger();
    expect(
      readPasswordHash(accountFor(relay.config.mailboxesDir, `nobody123@${DOMAIN}`), log),
    ).toBeUndefined();
    expect(log.lines).toEqual([]);
    relay.cleanup();
  });

  it("creates missing parent directories when setting a password, and marks the account E2EE-only", async () => {
    const relay = tempRelay();
    rmSync(relay.config.mailboxesDir, { recursive: true });
    const account = accountFor(relay.config.mailboxesDir, `user.name@${DOMAIN}`);
    await setPassword(account, "{SHA512-CRYPT}$6$abc$def");
    expect(readFileSync(account.passwordPath, "latin1")).toBe("{SHA512-CRYPT}$6$abc$def");
    expect(existsSync(account.enforceE2EEPath)).toBe(true);
    expect(userdbRecord(account, "x")).toEqual({
      addr: `user.name@${DOMAIN}`,
      home: account.maildir,
      uid: "vmail",
      gid: "vmail",
      password: "x",
    });
    relay.cleanup();
  });

  it("leaves exactly one complete file after 30 concurrent atomic writes", async () => {
    const relay = tempRelay();
    const path = join(relay.dir, "target");
    await Promise.all(Array.from({ length: 30 }, (_, i) => writeFileAtomic(path, `value-${i}`.repeat(100))));
    expect(readdirSync(relay.dir).filter((n) => n.startsWith("target"))).toEqual(["target"]);
    expect(readFileSync(path, "utf8")).toMatch(/^(value-\d+)\1{99}$/);
    relay.cleanup();
  });
});

describe("resourceShortage", () => {
  it("allows creation with permissive limits", async () => {
    const relay = tempRelay();
    expect(await resourceShortage(relay.config, memoryLogger())).toBeUndefined();
    relay.cleanup();
  });

  it("skips the disk check, with a log line, when the mailboxes dir cannot be read", async () => {
    const relay = tempRelay();
    const log = memoryLogger();
    const config = { ...relay.config, mailboxesDir: join(relay.dir, "gone"), minFreeDiskSpace: "99999999G" };
    expect(await resourceShortage(config, log)).toBeUndefined();
    expect(log.lines.some((l) => l.includes("ignoring unreadable system limit"))).toBe(true);
    relay.cleanup();
  });

  it("names the limit that is short", async () => {
    const relay = tempRelay();
    mkdirSync(join(relay.dir, "x"));
    writeFileSync(join(relay.dir, "x", "f"), "");
    expect(
      await resourceShortage({ ...relay.config, minAvailableMemory: "99999999G" }, memoryLogger()),
    ).toMatch(/^available memory \d+MB < \d+MB$/);
    expect(
      await resourceShortage({ ...relay.config, minFreeDiskSpace: "99999999G" }, memoryLogger()),
    ).toMatch(/^free disk \d+MB < \d+MB$/);
    relay.cleanup();
  });
});
