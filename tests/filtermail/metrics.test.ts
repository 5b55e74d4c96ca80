// The filter's metrics, moved by messages through the running proxy (a recording sink as Postfix's re-injection
// listener), and the rule each verdict names.
import { afterEach, describe, expect, it } from "vitest";
import { decide, VERDICT_RULES, type Direction } from "../../daemons/filtermail/verdict";
import { relayMetrics, type RelayMetrics } from "../../daemons/metrics/relay";
import { reply } from "../../daemons/smtp/reply";
import { RawClient, startFilter, startSink, testConfig } from "./harness";
import { DOMAIN, policy, sample, SAMPLE_NAMES, type SampleName } from "./samples";

const ALICE = `alice@${DOMAIN}`;
const BOB = `bob@${DOMAIN}`;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  direction: Direction,
  opts: { ini?: string; now?: () => number; sinkRefuses?: boolean } = {},
) {
  const metrics = relayMetrics();
  const sink = await startSink(() =>
    opts.sinkRefuses ? reply(554, "5.7.1 no valid DKIM signature") : reply(250, "2.0.0 Ok: queued as SINK"),
  );
  const { service } = await startFilter(testConfig(opts.ini), direction, {
    downstreamPort: sink.port,
    metrics,
    now: opts.now,
  });
  cleanups.push(
    () => sink.close(),
    () => service.close(),
  );
  const send = async (from: string, to: string[], message: Buffer) => {
    const c = await RawClient.connect(service.port);
    cleanups.push(() => c.close());
    return c.sendMail(from, to, message);
  };
  return { metrics, send, port: service.port };
}

/** Every filter verdict count that is not 0, as `direction verdict rule` -> count. */
function verdicts(m: RelayMetrics): Record<string, number> {
  const out: Record<string, number> = {};
  for (const direction of ["outgoing", "incoming"] as const)
    for (const verdict of ["accepted", "refused"] as const)
      for (const rule of VERDICT_RULES[direction][verdict]) {
        const n = m.filterVerdicts.get({ direction, verdict, rule }) ?? 0;
        if (n > 0) out[`${direction} ${verdict} ${rule}`] = n;
      }
  return out;
}

describe("the filter's metrics", () => {
  it("counts a refused cleartext message and an accepted encrypted one, outgoing", async () => {
    const { metrics: m, send } = await setup("outgoing");
    expect(await send(ALICE, [BOB], sample("plain", ALICE, BOB))).toMatch(/^523 /);
    expect(verdicts(m)).toEqual({ "outgoing refused cleartext": 1 });
    expect(await send(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toMatch(/^250 /);
    // multipart/encrypted whose payload is a literal-data packet: it claims encryption and fails on its framing.
    expect(await send(ALICE, [BOB], sample("literal", ALICE, BOB))).toMatch(/^523 /);
    expect(verdicts(m)).toEqual({
      "outgoing refused cleartext": 1,
      "outgoing accepted encrypted": 1,
      "outgoing refused framing": 1,
    });
    expect(m.lastIncomingDelivery.get()).toBe(0); // outgoing mail is no incoming delivery
  });

  it("counts the rate limit's refusals at MAIL FROM, which are no verdicts", async () => {
    const { metrics: m, send } = await setup("outgoing", { ini: "max_user_send_burst_size = 2\n" });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await send(ALICE, [BOB], sample("encrypted", ALICE, BOB)));
    expect(answers.map((a) => a.slice(0, 3))).toEqual(["250", "250", "450", "450"]);
    expect(m.rateLimitHits.get()).toBe(2);
    expect(verdicts(m)).toEqual({ "outgoing accepted encrypted": 2 });
  });

  it("sets the last incoming delivery when the incoming filter accepted and Postfix took the message", async () => {
    let now = 1_700_000_000_000;
    const { metrics: m, send } = await setup("incoming", { now: () => now });
    expect(m.lastIncomingDelivery.get()).toBe(0);
    expect(
      await send("carol@example.org", [`someone@other.example`], sample("plain", "carol@example.org", BOB)),
    ).toMatch(/^523 /);
    expect(m.lastIncomingDelivery.get()).toBe(0);
    expect(await send("carol@example.org", [BOB], sample("encrypted", "carol@example.org", BOB))).toMatch(
      /^250 /,
    );
    expect(m.lastIncomingDelivery.get()).toBe(1_700_000_000);
    now += 5000;
    expect(await send("carol@example.org", [BOB], sample("plain", "carol@example.org", BOB))).toMatch(
      /^250 /,
    );
    expect(m.lastIncomingDelivery.get()).toBe(1_700_000_005);
    expect(verdicts(m)).toEqual({
      "incoming refused cleartext": 1,
      "incoming accepted encrypted": 1,
      // testConfig's mailboxes directory holds no enforceE2EEincoming marker for bob.
      "incoming accepted cleartext_allowed": 1,
    });
  });

  it("leaves the last incoming delivery alone when Postfix refuses the accepted message", async () => {
    const { metrics: m, send } = await setup("incoming", { sinkRefuses: true });
    expect(await send("carol@example.org", [BOB], sample("encrypted", "carol@example.org", BOB))).toMatch(
      /^554 /,
    );
    expect(verdicts(m)).toEqual({ "incoming accepted encrypted": 1 });
    expect(m.lastIncomingDelivery.get()).toBe(0);
  });
});

describe("the rule a verdict names", () => {
  const rule = (
    direction: Direction,
    name: SampleName,
    to = BOB,
    opts: Parameters<typeof policy>[0] = {},
  ) => {
    const from = name === "mailer-daemon" ? "MAILER-DAEMON@example.org" : ALICE;
    const v = decide(direction, { mailFrom: from, rcptTos: [to] }, sample(name, from, to), policy(opts));
    return `${v.accept ? "accepted" : "refused"} ${v.rule}`;
  };

  it.each<[SampleName, string, string]>([
    ["encrypted", "accepted encrypted", "accepted encrypted"],
    // text/plain with a fake armor: nothing claims encryption, so it is plain cleartext.
    ["fake-encrypted", "refused cleartext", "refused cleartext"],
    ["literal", "refused framing", "refused framing"],
    ["plain", "refused cleartext", "refused cleartext"],
    ["mdn", "refused cleartext", "refused cleartext"],
    ["mailer-daemon", "refused cleartext", "accepted bounce"],
    ["securejoin-vc", "accepted securejoin", "accepted securejoin"],
    ["securejoin-vc-fake", "refused framing", "refused framing"],
    ["asm", "refused cleartext", "refused cleartext"],
  ])("names %s outgoing %s, incoming %s", (name, outgoing, incoming) => {
    expect(rule("outgoing", name)).toBe(outgoing);
    expect(rule("incoming", name, BOB, { enforcing: [BOB] })).toBe(incoming);
  });

  it("names the exceptions that let cleartext through, and the header checks", () => {
    expect(rule("outgoing", "plain", BOB, { passthroughSenders: [ALICE] })).toBe("accepted passthrough");
    expect(rule("outgoing", "plain", "echo@example.net", { passthroughRecipients: ["@example.net"] })).toBe(
      "accepted passthrough",
    );
    expect(rule("outgoing", "asm", ALICE)).toBe("accepted setup_message");
    expect(rule("incoming", "plain", BOB, { enforcing: [] })).toBe("accepted cleartext_allowed");
    const mismatch = decide(
      "outgoing",
      { mailFrom: BOB, rcptTos: [ALICE] },
      sample("encrypted", ALICE, BOB),
      policy(),
    );
    expect(mismatch.accept ? "accepted" : `refused ${mismatch.rule}`).toBe("refused sender_mismatch");
    const noFrom = decide(
      "incoming",
      { mailFrom: ALICE, rcptTos: [BOB] },
      Buffer.from("Subject: x\r\n\r\nhi\r\n"),
      policy(),
    );
    expect(noFrom.accept ? "accepted" : `refused ${noFrom.rule}`).toBe("refused from_header");
  });

  it("gives only rules the metrics declare for the direction and outcome", () => {
    for (const direction of ["outgoing", "incoming"] as const)
      for (const name of SAMPLE_NAMES)
        for (const enforcing of [[BOB], []]) {
          const from = name === "mailer-daemon" ? "MAILER-DAEMON@example.org" : ALICE;
          const v = decide(
            direction,
            { mailFrom: from, rcptTos: [BOB] },
            sample(name, from, BOB),
            policy({ enforcing }),
          );
          const declared: readonly string[] = VERDICT_RULES[direction][v.accept ? "accepted" : "refused"];
          expect(declared, `${direction} ${name}`).toContain(v.rule);
        }
  });
});
