// The daemons' config: exactly the options marked `daemons: true`, read back from the chatmail.ini the plan writes.
import { describe, expect, it } from "vitest";
import { loadConfig, OPTION_NAMES, OPTIONS, renderChatmailIni } from "../../core/config";
import { DAEMON_OPTION_NAMES, daemonConfig, parseDaemonConfig } from "../../core/config/daemon";

describe("the daemon config", () => {
  it("names exactly the options marked daemons: true, in table order", () => {
    expect([...DAEMON_OPTION_NAMES]).toEqual(OPTION_NAMES.filter((name) => OPTIONS[name].daemons));
  });

  it.each([
    { mailDomain: "chat.example.org" },
    {
      mailDomain: "chat.example.org",
      inviteTokens: ["abcdefghijk", "lmnopqrstuv"],
      irohRelay: "https://iroh.example.net",
      passthroughRecipients: ["@example.net", "echo@example.org"],
      tlsMode: "self-signed",
      maxLoad1m: "2.5",
      sshPrivateKey: "not for the daemons",
      hetznerLocation: "hel1",
    },
  ])("reads back from the rendered chatmail.ini what the relay config holds (%#)", (raw) => {
    const config = loadConfig(raw);
    const parsed = parseDaemonConfig(renderChatmailIni(config));
    expect(parsed.unknownKeys).toEqual([]);
    expect(parsed.config).toEqual(daemonConfig(config));
    expect(Object.keys(parsed.config)).toEqual([...DAEMON_OPTION_NAMES]);
  });

  it("reports keys that set nothing, as the daemons always did", () => {
    const { unknownKeys } = parseDaemonConfig("[params]\nmail_domain = chat.example.org\npassdb_path = /x\n");
    expect(unknownKeys).toEqual(["passdb_path"]);
  });
});
