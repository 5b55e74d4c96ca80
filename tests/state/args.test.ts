// The command lines of backup, restore and move: what each reads, and one error per mistake that names the flag.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_STOP_TIMEOUT,
  parseBackupArgs,
  parseMoveArgs,
  parseRestoreArgs,
  UsageError,
} from "../../tools/state/args";

const error = (parse: (argv: string[], cwd: string) => unknown, argv: string[]) => {
  try {
    parse(argv, "/repo");
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
};

describe("backup", () => {
  it("reads every option, keys and accounts only unless --mailboxes", () => {
    expect(parseBackupArgs(["--stack", "prod", "--out", "b.bak", "--key-file", "k"], "/repo")).toEqual({
      cwd: "/repo",
      stack: "prod",
      out: "b.bak",
      keyFile: "k",
      mailboxes: false,
    });
    expect(
      parseBackupArgs(
        [
          "--stack=prod",
          "--out=b",
          "--key-file=k",
          "--mailboxes",
          "--host",
          "203.0.113.9",
          "--ssh-key",
          "id",
        ],
        "/repo",
      ),
    ).toMatchObject({ mailboxes: true, host: "203.0.113.9", sshKey: "id" });
    expect(
      parseBackupArgs(
        ["--stack", "p", "--out", "b", "--key-file", "k", "--cwd", "/p", "--known-hosts", "kh"],
        "/r",
      ),
    ).toMatchObject({ cwd: "/p", knownHosts: "kh" });
    expect(parseBackupArgs(["-h"], "/repo")).toBe("help");
  });

  it.each([
    [[], /^--stack NAME is required$/],
    [["--stack", "p", "--key-file", "k"], /^--out FILE is required$/],
    [["--stack", "p", "--out", "b"], /^--key-file KEYFILE is required$/],
    [["--stack", "p", "--out", "", "--key-file", "k"], /^--out '' names no file$/],
    [["--stack", "p", "--out", "b", "--key-file", "k", "--host", " "], /^--host ' ' names no address$/],
    [["--stack", "p", "--out"], /^Option '--out <value>' argument missing$/],
    [["--stack", "p", "--out", "b", "--key-file", "k", "--parts", "keys"], /^Unknown option '--parts'$/],
    [["--stack", "p", "--out", "b", "--key-file", "k", "extra"], /^unexpected argument 'extra' for backup$/],
  ])("refuses %j in one line naming the flag", (argv, message) => {
    expect(error(parseBackupArgs, argv)).toMatch(message);
  });
});

describe("restore", () => {
  const base = ["--stack", "p", "--in", "b.bak", "--key-file", "k"];

  it("reads every option; the parts default to what the archive holds", () => {
    expect(parseRestoreArgs(base, "/repo")).toEqual({
      command: "restore",
      cwd: "/repo",
      stack: "p",
      in: "b.bak",
      keyFile: "k",
      force: false,
    });
    expect(parseRestoreArgs([...base, "--parts", "mailboxes, accounts", "--force"], "/repo")).toMatchObject({
      parts: ["accounts", "mailboxes"],
      force: true,
    });
  });

  it("has dkim-key, which needs only the file and the key file", () => {
    expect(parseRestoreArgs(["dkim-key", "--in", "b", "--key-file", "k"], "/repo")).toEqual({
      command: "dkim-key",
      in: "b",
      keyFile: "k",
    });
  });

  it.each([
    [["--stack", "p", "--key-file", "k"], /^--in FILE is required$/],
    [[...base, "--parts", "keys,mail"], /^--parts unknown part 'mail' \(use keys, accounts, mailboxes\)$/],
    [[...base, "--parts", ","], /^--parts ',' names no part/],
    [[...base, "--force=yes"], /^Option '--force' does not take an argument$/],
    [["list", ...base], /^unknown command 'list' \(restore takes none, or dkim-key\)$/],
    [["dkim-key", "--in", "b"], /^--key-file KEYFILE is required$/],
    [["dkim-key", "--in", "b", "--key-file", "k", "--stack", "p"], /^--stack has no use with dkim-key$/],
    [["dkim-key", "--in", "b", "--key-file", "k", "--parts", "keys"], /^--parts has no use with dkim-key$/],
  ])("refuses %j in one line naming the flag", (argv, message) => {
    expect(error(parseRestoreArgs, argv)).toMatch(message);
  });
});

describe("move", () => {
  it("reads prepare and finish with their own options; finish waits 600 s by default", () => {
    expect(parseMoveArgs(["prepare", "--stack", "p", "--to", "198.51.100.2"], "/repo")).toEqual({
      command: "prepare",
      cwd: "/repo",
      stack: "p",
      to: "198.51.100.2",
    });
    expect(parseMoveArgs(["prepare", "--stack", "p", "--to", "n", "--to-ssh-key", "id"], "/r")).toMatchObject(
      {
        toSshKey: "id",
      },
    );
    expect(parseMoveArgs(["finish", "--stack", "p", "--from", "203.0.113.1"], "/repo")).toEqual({
      command: "finish",
      cwd: "/repo",
      stack: "p",
      from: "203.0.113.1",
      timeout: DEFAULT_STOP_TIMEOUT,
    });
    expect(DEFAULT_STOP_TIMEOUT).toBe(600);
    expect(
      parseMoveArgs(
        ["finish", "--stack", "p", "--from", "o", "--timeout", "30", "--from-ssh-key", "id"],
        "/r",
      ),
    ).toMatchObject({ timeout: 30, fromSshKey: "id" });
  });

  it.each([
    [[], /^no command given \(use prepare, finish\)$/],
    [["start"], /^unknown command 'start' \(use prepare, finish\)$/],
    [["prepare", "--stack", "p"], /^--to ADDRESS is required$/],
    [["prepare", "--to", "n"], /^--stack NAME is required$/],
    [["finish", "--stack", "p"], /^--from ADDRESS is required$/],
    [
      ["finish", "--stack", "p", "--from", "o", "--timeout", "ten"],
      /^--timeout 'ten' is not a whole number of seconds$/,
    ],
    [["finish", "--stack", "p", "--from", "o", "--timeout", "1.5"], /^--timeout '1.5'/],
    [["prepare", "--stack", "p", "--to", "n", "--from", "o"], /^--from has no use with prepare$/],
    [["prepare", "--stack", "p", "--to", "n", "--timeout", "5"], /^--timeout has no use with prepare$/],
    [["finish", "--stack", "p", "--from", "o", "--to", "n"], /^--to has no use with finish$/],
    [["prepare", "finish", "--stack", "p", "--to", "n"], /^unexpected argument 'finish' for prepare$/],
    [["prepare", "--stack", "p", "--to", "n", "--bogus"], /^Unknown option '--bogus'$/],
  ])("refuses %j in one line naming the flag", (argv, message) => {
    expect(error(parseMoveArgs, argv)).toMatch(message);
  });
});
