// The options of account creation as a chatmail.ini sets them: defaults, ranges and the rule between the two
// password lengths.
import { describe, expect, it } from "vitest";
import { parseChatmailIni } from "../../core/config/ini";

const ini = (extra: string) => parseChatmailIni(`[params]\nmail_domain = chat.example.org\n${extra}`).config;

describe("account creation options", () => {
  it("has defaults: passwords up to 256 characters, 120 new accounts a minute, 10 per client", () => {
    const c = ini("");
    expect(c.passwordMaxLength).toBe(256);
    expect(c.accountCreationsPerMinute).toBe(120);
    expect(c.accountCreationsPerMinutePerClient).toBe(10);
  });

  it("refuses passwordMaxLength below passwordMinLength, naming both", () => {
    expect(() => ini("password_min_length = 12\npassword_max_length = 11\n")).toThrow(
      "passwordMinLength: 12 is above passwordMaxLength 11; make it at most that",
    );
    expect(ini("password_min_length = 12\npassword_max_length = 12\n").passwordMaxLength).toBe(12);
  });

  it.each([
    ["password_max_length = 2000", /passwordMaxLength: .*2000.* 1 to 1024/],
    ["account_creations_per_minute = 0", /accountCreationsPerMinute: .*0.* 1 to 100000/],
    [
      "account_creations_per_minute_per_client = many",
      /accountCreationsPerMinutePerClient: .*many.* 1 to 100000/,
    ],
  ])("refuses %s, naming the option and the range", (line, message) => {
    expect(() => ini(`${line}\n`)).toThrow(message);
  });
});
