// The Lua scripts of the relay, run under Lua 5.4 with stand-ins for the host APIs: Dovecot's push-notification
// hook (dovecot-core links Lua 5.4) with user, mailbox and event objects shaped like Dovecot's Lua API, and
// OpenDKIM's screen/final policy (opendkim links Lua 5.3; the scripts use nothing that differs) with a stand-in
// odkim library. `opendkim -n` in tools.test.ts runs the same scripts inside OpenDKIM itself.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor, text } from "./helpers";

const dir = mkdtempSync(join(tmpdir(), "plan-lua-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runHook(events: { from: string }[]): string {
  const hook = join(dir, "push_notification.lua");
  writeFileSync(hook, text(planFor(), "/etc/dovecot/push_notification.lua"));
  const driver = `
dofile(${JSON.stringify(hook)})
local log = {}
local mailbox = {
  sync = function(self) table.insert(log, "sync") end,
  metadata_set = function(self, key, value) table.insert(log, "set " .. key .. "=" .. value) end,
  free = function(self) table.insert(log, "free") end,
}
local user = { username = "alice@chat.example.org", mailbox = function(self, name) table.insert(log, "open " .. name); return mailbox end }
local txn = dovecot_lua_notify_begin_txn(user)
${events.map((e) => `dovecot_lua_notify_event_message_new(txn, { mailbox = "INBOX", from_address = ${JSON.stringify(e.from)} })`).join("\n")}
dovecot_lua_notify_end_txn(txn, true)
print(table.concat(log, ","))
`;
  const r = spawnSync("lua5.4", ["-e", driver], { encoding: "utf8" });
  if (r.error)
    throw new Error(`lua5.4 could not run (${r.error.message}); install it (see .ci/debian-packages)`);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

describe("push_notification.lua", () => {
  it("marks a new message from someone else for a push notification", () => {
    expect(runHook([{ from: "bob@example.net" }])).toBe("open INBOX,sync,set /private/messagenew=,free");
  });

  it("leaves copies of one's own messages alone", () => {
    expect(runHook([{ from: "alice@chat.example.org" }])).toBe("");
  });

  it("compiles without errors", () => {
    const hook = join(dir, "check.lua");
    writeFileSync(hook, text(planFor(), "/etc/dovecot/push_notification.lua"));
    const r = spawnSync("luac5.4", ["-p", hook], { encoding: "utf8" });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
  });
});

/** A signature as the stand-in odkim library sees it. */
interface Sig {
  domain: string;
  result: number;
  body?: number;
  signed?: number;
}

/** Runs screen.lua then final.lua with a stand-in odkim library (opendkim-lua(3)); returns what they decided. */
function runPolicy(opts: { from: string; sigs: Sig[]; internal?: boolean; daemon?: string }): string {
  const plan = planFor();
  const screen = join(dir, "screen.lua");
  const final = join(dir, "final.lua");
  writeFileSync(screen, text(plan, "/etc/opendkim/screen.lua"));
  writeFileSync(final, text(plan, "/etc/opendkim/final.lua"));
  const sigs = opts.sigs
    .map(
      (s) =>
        `{ domain = "${s.domain}", result = ${s.result}, body = ${s.body ?? "nil"}, signed = ${s.signed ?? "nil"} }`,
    )
    .join(", ");
  const driver = `
SMFIS_REJECT = 5
ctx = {}
local sigs = { ${sigs} }
local decision = "accept"
odkim = {
  get_fromdomain = function(c) return ${JSON.stringify(opts.from)} end,
  get_sigcount = function(c) return #sigs end,
  get_sighandle = function(c, i) return sigs[i + 1] end,
  sig_getdomain = function(s) return s.domain end,
  sig_ignore = function(s) s.result = -1 end,
  sig_result = function(s) return s.result end,
  sig_bodylength = function(c, s) return s.body end,
  sig_canonlength = function(c, s) return s.signed end,
  internal_ip = function(c) return ${opts.internal ? 1 : 0} end,
  get_mtasymbol = function(c, name) if name == "{daemon_name}" then return ${JSON.stringify(opts.daemon ?? "chat.example.org")} end end,
  set_reply = function(c, code, xcode, text) decision = code .. " " .. xcode .. " " .. text end,
  set_result = function(c, r) if r ~= SMFIS_REJECT then decision = "bad result" end end,
}
dofile(${JSON.stringify(screen)})
dofile(${JSON.stringify(final)})
print(decision)
`;
  const r = spawnSync("lua5.4", ["-e", driver], { encoding: "utf8" });
  if (r.error) throw new Error(`lua5.4 could not run (${r.error.message})`);
  expect(r.stderr).toBe("");
  return r.stdout.trim();
}

const REJECTED = "554 5.7.1 No valid DKIM signature found";

describe("opendkim screen.lua and final.lua", () => {
  it("accept incoming mail with a valid signature of the From: domain", () => {
    expect(
      runPolicy({
        from: "example.net",
        sigs: [{ domain: "example.net", result: 0, body: 100, signed: 100 }],
      }),
    ).toBe("accept");
  });

  it("reject mail whose only valid signature is of another domain", () => {
    expect(
      runPolicy({ from: "example.net", sigs: [{ domain: "evil.example", result: 0, body: 10, signed: 10 }] }),
    ).toBe(REJECTED);
  });

  it("reject mail without a signature or with a failed one", () => {
    expect(runPolicy({ from: "example.net", sigs: [] })).toBe(REJECTED);
    expect(runPolicy({ from: "example.net", sigs: [{ domain: "example.net", result: 13 }] })).toBe(REJECTED);
  });

  it("accept a valid signature whose canonical body is shorter than the message (trailing blank lines)", () => {
    expect(
      runPolicy({
        from: "example.net",
        sigs: [{ domain: "example.net", result: 0, body: 502, signed: 498 }],
      }),
    ).toBe("accept");
  });

  it("let the relay's own outgoing mail and bounces through to be signed", () => {
    expect(runPolicy({ from: "chat.example.org", sigs: [], internal: true })).toBe("accept");
    expect(runPolicy({ from: "chat.example.org", sigs: [], daemon: "ORIGINATING" })).toBe("accept");
  });
});
