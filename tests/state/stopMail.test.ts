// The stop-mail script of a move, run with sh against recorded `postqueue -j` output (a fake postqueue on PATH
// that answers each call with the next recorded queue; fake postconf, postfix, systemctl and sleep record their
// calls): it closes the listeners, waits while mail for the relay's domain is queued, stops the services, and
// names what is left for other domains by queue id and domain only.
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { QUEUE_CLASSIFIER, stopMailScript } from "../../core/state";
import { configFor } from "../plan/helpers";
import { calls, cleanupServers, DOMAIN, runScript, server, setSwitch, type Server } from "./helpers";

afterAll(cleanupServers);

const config = configFor();

/** A line as Postfix 3.7's `postqueue -j` prints it. */
const queued = (id: string, recipients: string[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    queue_name: "deferred",
    queue_id: id,
    arrival_time: 1700000000,
    message_size: 4321,
    forced_expire: false,
    sender: `alice@${DOMAIN}`,
    recipients: recipients.map((address) => ({
      address,
      delay_reason: "connect to mx.example.net[192.0.2.1]:25: Connection timed out (Subject: secret words)",
    })),
    ...extra,
  });

const LOCAL = queued("4C8A21E0B5", [`bob@${DOMAIN}`]);
const GMAIL = queued("5D9B32F1C6", ["carol@gmail.com"]);
const TWO_DOMAINS = queued("6EAC4302D7", ["dave@example.net", "erin@example.org", "frank@example.net"]);

function run(s: Server, queues: string[][], timeout = 600) {
  queues.forEach((lines, i) => setSwitch(s, `queue-${i + 1}`, lines.map((l) => `${l}\n`).join("")));
  const r = runScript(s, stopMailScript({ config, timeoutSeconds: timeout }));
  return { ...r, stdout: r.stdout.toString() };
}

const stops = (s: Server) => calls(s).filter((l) => l.startsWith("systemctl"));

describe("the stop-mail script", () => {
  it("closes every SMTP listener, flushes, and stops the services at once when no mail is queued", () => {
    const s = server();
    const r = run(s, [[]]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^stop-mail: SMTP closed, no mail for ${DOMAIN} queued \\(waited \\d+ s\\), stopped postfix\\.service, dovecot\\.service, chatmaild\\.service; no message for other domains is queued\\n$`,
      ),
    );
    expect(calls(s)).toEqual([
      "postconf -e master_service_disable=inet",
      "postfix status",
      "postfix reload",
      "postqueue -f",
      "postqueue -j",
      "systemctl stop postfix.service",
      "systemctl stop dovecot.service",
      "systemctl stop chatmaild.service",
    ]);
  });

  it("waits while mail for the relay is queued, then names what stays for other domains by id and domain", () => {
    const s = server();
    const r = run(s, [
      [LOCAL, GMAIL],
      [LOCAL, GMAIL, TWO_DOMAINS],
      [GMAIL, TWO_DOMAINS],
    ]);
    expect(r.status).toBe(0);
    expect(calls(s).filter((l) => l === "postqueue -j")).toHaveLength(3);
    expect(calls(s).filter((l) => l.startsWith("sleep"))).toEqual(["sleep 2", "sleep 2"]);
    expect(r.stdout).toMatch(
      /; 2 messages for other domains stay in this server's queue: 5D9B32F1C6 \(gmail\.com\), 6EAC4302D7 \(example\.net,example\.org\)\n$/,
    );
    // One line, and nothing of the messages but ids and domains.
    expect(r.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stdout).not.toMatch(/carol|dave|alice|secret|Connection|192\.0\.2/);
    expect(stops(s)).toHaveLength(3);
  });

  it("gives up at the timeout with mail for the relay still queued: exit 1, services left running", () => {
    const s = server();
    const r = run(s, [[LOCAL, GMAIL]], 0);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `^stop-mail: after \\d+ s, 1 messages for ${DOMAIN} are still queued \\(4C8A21E0B5\\); SMTP stays closed, the services keep running; 1 messages for other domains stay in this server's queue: 5D9B32F1C6 \\(gmail\\.com\\)\\n$`,
      ),
    );
    expect(stops(s)).toEqual([]);
    expect(calls(s)).toContain("postconf -e master_service_disable=inet");
  });

  it("names at most 20 messages and counts the rest", () => {
    const s = server();
    const many = Array.from({ length: 23 }, (_, i) => queued(`A${i}`, ["x@gmail.com"]));
    const r = run(s, [many]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/23 messages for other domains .*A19 \(gmail\.com\) and 3 more\n$/);
  });

  it("run again after it stopped the services, starts them with the listeners closed to deliver the queue", () => {
    const s = server();
    setSwitch(s, "postfix-stopped");
    const r = run(s, [[LOCAL], []]);
    expect(r.status).toBe(0);
    expect(calls(s).filter((l) => /^(postfix|systemctl)/.test(l))).toEqual([
      "postfix status",
      "systemctl start chatmaild.service",
      "systemctl start dovecot.service",
      "systemctl start postfix.service",
      "systemctl stop postfix.service",
      "systemctl stop dovecot.service",
      "systemctl stop chatmaild.service",
    ]);
  });

  it("stops before waiting when Postfix's listeners cannot be closed", () => {
    const s = server();
    setSwitch(s, "fail-postconf");
    const r = run(s, [[LOCAL]]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/could not close Postfix's listeners/);
    expect(calls(s)).toEqual(["postconf -e master_service_disable=inet"]);
  });
});

describe("the queue classifier", () => {
  const classify = (lines: string[], domain = DOMAIN) =>
    spawnSync("node", ["-e", QUEUE_CLASSIFIER, domain], { input: lines.join("\n") + "\n", encoding: "utf8" })
      .stdout.trimEnd()
      .split("\n");

  it("counts a message as the relay's when any recipient is at its domain, in any case", () => {
    expect(
      classify([
        LOCAL,
        queued("B1", [`Bob@${DOMAIN.toUpperCase()}`]),
        queued("B2", ["x@gmail.com", `bob@${DOMAIN}`]),
        queued("B3", ["x@gmail.com"]),
        queued("B4", [`bob@sub.${DOMAIN}`]),
      ]),
    ).toEqual(["local 4C8A21E0B5", "local B1", "local B2", "other B3 gmail.com", `other B4 sub.${DOMAIN}`]);
  });

  it("waits for what it cannot judge: no domain, no recipients, a line that is no JSON", () => {
    expect(classify([queued("C1", ["postmaster"]), queued("C2", []), "{not json", GMAIL])).toEqual([
      "local C1",
      "local C2",
      "local ?",
      "other 5D9B32F1C6 gmail.com",
    ]);
  });

  it("prints only safe characters of ids and domains", () => {
    expect(classify([queued("D1;rm -rf", ['"x y"@evil$(id).example'])])).toEqual([
      "other D1rmrf evilid.example",
    ]);
  });
});
