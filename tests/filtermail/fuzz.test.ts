// Hostile input in every state: random mixes of valid commands, garbage and DATA sections never crash the
// filter, and every command line gets an answer (or the session is closed with 421).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FiltermailService } from "../../daemons/filtermail/index";
import { RawClient, startFilter, startSink, testConfig, type Sink } from "./harness";
import { sample } from "./samples";

let sink: Sink;
let filter: FiltermailService;

beforeAll(async () => {
  sink = await startSink();
  filter = (
    await startFilter(
      testConfig("max_message_size = 65536\nmax_user_send_burst_size = 100000\n"),
      "outgoing",
      { downstreamPort: sink.port },
    )
  ).service;
});
afterAll(async () => {
  await filter.close();
  await sink.close();
});

const ALICE = "alice@chat.example.org";
const encrypted = sample("encrypted", ALICE, "bob@chat.example.org").toString("latin1");

const line = fc.oneof(
  fc.constantFrom(
    "EHLO x",
    "HELO x",
    `MAIL FROM:<${ALICE}>`,
    "MAIL FROM:<>",
    "RCPT TO:<bob@chat.example.org> NOTIFY=NEVER",
    "DATA",
    "RSET",
    "NOOP",
    "MAIL FROM:<a",
    "RCPT TO:",
    "BDAT 10 LAST",
    "STARTTLS",
    "",
  ),
  fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, "")),
  fc.uint8Array({ maxLength: 40 }).map((a) =>
    Buffer.from(a)
      .toString("latin1")
      .replace(/[\r\n]/g, ""),
  ),
  fc.constantFrom(`${encrypted}\r\n.`, "x\r\n.", ".", "..\r\n."),
);

describe("filtermail under random input", () => {
  it("answers or closes, and keeps serving new sessions", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 25 }), async (lines) => {
        const c = await RawClient.connect(filter.port);
        expect(await c.next()).toMatch(/^220/);
        for (const l of lines) {
          c.write(Buffer.from(`${l}\r\n`, "latin1"));
          const answer = await Promise.race([
            c.next(),
            new Promise<string>((r) => setTimeout(() => r("silent"), 300)),
          ]);
          // Inside DATA a line gets no answer until the end marker; anything else must be answered.
          if (answer === "silent" || answer === "closed") continue;
          expect(answer).toMatch(/^[2-5]\d\d /);
        }
        c.close();
        const fresh = await RawClient.connect(filter.port);
        expect(await fresh.next()).toMatch(/^220/);
        fresh.close();
      }),
      { numRuns: 60 },
    );
  });

  it("ends idle sessions with 421 on close()", async () => {
    const own = await startFilter(testConfig(), "outgoing", { downstreamPort: sink.port });
    const c = await RawClient.connect(own.service.port);
    expect(await c.next()).toMatch(/^220/);
    await own.service.close();
    expect(await c.next()).toBe("421 4.3.2 Service shutting down");
  });
});
