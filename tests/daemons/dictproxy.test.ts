import fc from "fast-check";
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import {
  DictProtocolError,
  escapeField,
  formatIterateReply,
  formatLookupReply,
  found,
  NOT_FOUND,
  parseRequest,
  pythonJson,
  unescapeField,
} from "../../daemons/dictproxy/protocol";
import { MAX_LINE_BYTES, startDictServer } from "../../daemons/dictproxy/server";
import type { Service } from "../../daemons/service";
import { converse, DictClient, tempRelay, type TempRelay } from "./helpers";

describe("parseRequest", () => {
  it("reads lookups with and without the user field", () => {
    expect(parseRequest("Lshared/userdb/a@b\ta@b")).toEqual({
      kind: "lookup",
      key: "shared/userdb/a@b",
      user: "a@b",
    });
    expect(parseRequest("Lshared/userdb/a@b")).toEqual({
      kind: "lookup",
      key: "shared/userdb/a@b",
      user: undefined,
    });
  });

  it("reads iterate, begin, set (value optional), commit and rollback", () => {
    expect(parseRequest("I0\t0\tshared/userdb/")).toMatchObject({
      kind: "iterate",
      flags: 0,
      maxRows: 0,
      path: "shared/userdb/",
    });
    expect(parseRequest("B1\tu@x")).toEqual({ kind: "begin", tid: "1", user: "u@x" });
    expect(parseRequest("S1\tpriv/g/messagenew")).toEqual({
      kind: "set",
      tid: "1",
      key: "priv/g/messagenew",
      value: "",
    });
    expect(parseRequest("C1")).toEqual({ kind: "commit", tid: "1" });
    expect(parseRequest("R1")).toEqual({ kind: "rollback", tid: "1" });
  });

  it("undoes Dovecot's \\001 escapes in every field", () => {
    expect(unescapeField("a\u0001tb\u0001nc\u0001rd\u00011e\u00010")).toBe("a\tb\nc\rd\u0001e\0");
    expect(parseRequest('Lshared/passdb/pw\u0001tx"u@x\tu@x')).toMatchObject({
      key: 'shared/passdb/pw\tx"u@x',
    });
  });

  it.each([
    ["a bad \\001 escape", "Lkey\u0001x"],
    ["a lone trailing \\001", "Lkey\u0001"],
    ["a raw NUL byte", "Lshared/userdb/a\0b@x"],
    ["B without a user", "B1"],
    ["a non-numeric iterate flag", "Ix\t0\tshared/"],
  ])("rejects %s", (_what, line) => {
    expect(() => parseRequest(line)).toThrow(DictProtocolError);
  });

  it("returns unknown commands as such", () => {
    expect(parseRequest("Xwhatever")).toEqual({ kind: "unknown", command: "X" });
  });
});

describe("reply formatting", () => {
  it("formats found, not found and failure", () => {
    expect(formatLookupReply(found("v"))).toBe("Ov\n");
    expect(formatLookupReply(found(""))).toBe("O\n");
    expect(formatLookupReply(NOT_FOUND)).toBe("N\n");
    expect(formatLookupReply("fail")).toBe("F\n");
  });

  it("escapes values so that a reply stays one line", () => {
    expect(escapeField("a\tb\nc")).toBe("a\u0001tb\u0001nc");
    expect(formatLookupReply(found("x\ny"))).toBe("Ox\u0001ny\n");
  });

  it("ends iterate output with an empty line", () => {
    expect(formatIterateReply([])).toBe("\n");
    expect(formatIterateReply([["shared/userdb/a@x", ""]])).toBe("Oshared/userdb/a@x\t\n\n");
  });

  it("writes JSON with Python's separators and ASCII only", () => {
    expect(pythonJson({ a: "1", b: "ü" })).toBe('{"a": "1", "b": "\\u00fc"}');
  });
});

describe("startDictServer", () => {
  let relay: TempRelay;
  let server: Service;
  let log: ReturnType<typeof memoryLogger>;
  let sock: string;

  beforeEach(async () => {
    relay = tempRelay();
    sock = relay.socket("dict");
    log = memoryLogger();
    server = await startDictServer({
      socketPath: sock,
      log,
      handlers: {
        lookup: (key, user) =>
          key === "boom"
            ? Promise.reject(new Error("handler failed"))
            : key === "k"
              ? found(`v-${user ?? ""}`)
              : NOT_FOUND,
        iterate: (path) =>
          path === "p/"
            ? [
                ["p/a", "1"],
                ["p/b", "2"],
              ]
            : [],
        set: (_tx, key) => key.startsWith("ok/"),
      },
    });
  });

  afterEach(async () => {
    await server.close();
    relay.cleanup();
  });

  it("ignores hello and answers lookups in order", async () => {
    expect(await converse(sock, "H3\t2\t0\t\tauth\nLk\tu1\nLmissing\tu1\nLk\tu2\n")).toBe(
      "Ov-u1\nN\nOv-u2\n",
    );
  });

  it("processes a last line that has no LF before EOF", async () => {
    expect(await converse(sock, "I0\t0\tp/")).toBe("Op/a\t1\nOp/b\t2\n\n");
  });

  it("answers a commit with O when every set succeeded and F otherwise", async () => {
    expect(await converse(sock, "B1\tu@x\nS1\tok/a\tv\nC1\nB2\tu@x\nS2\tbad/a\tv\nC2\n")).toBe("O\nF\n");
    expect(log.lines.some((l) => l.includes("dictproxy-set failed"))).toBe(true);
  });

  it("keeps transactions per connection, since Dovecot reuses ids across connections", async () => {
    const a = await DictClient.open(sock);
    const b = await DictClient.open(sock);
    a.send("B1\ta@x");
    b.send("B1\tb@x");
    b.send("S1\tbad/x\t1");
    a.send("S1\tok/x\t1");
    expect(await a.request("C1")).toBe("O\n");
    expect(await b.request("C1")).toBe("F\n");
    a.close();
    b.close();
  });

  it("ignores unset (as upstream) and still commits with O", async () => {
    expect(await converse(sock, "B1\tu@x\nU1\tok/a\nC1\n")).toBe("O\n");
    expect(log.lines.some((l) => l.includes("unset ignored"))).toBe(true);
  });

  it("answers F for a set or commit of an unknown transaction and keeps serving", async () => {
    expect(await converse(sock, "S9\tok/x\t1\nC9\nLk\tu\n")).toBe("F\nOv-u\n");
  });

  it("answers F when a handler throws, logs it, and keeps the connection", async () => {
    expect(await converse(sock, "Lboom\tu\nLk\tu\n")).toBe("F\nOv-u\n");
    expect(log.lines.some((l) => l.includes("exception in the handler"))).toBe(true);
  });

  it("logs unknown commands and answers nothing", async () => {
    expect(await converse(sock, "Xfoo\nTbar\nLk\tu\n")).toBe("Ov-u\n");
    expect(log.lines.some((l) => l.includes("unknown dictproxy request"))).toBe(true);
  });

  it("answers F for malformed lines: bad escape, NUL byte", async () => {
    expect(await converse(sock, "Lk\u0001z\tu\nLa\0b\tu\nLk\tu\n")).toBe("F\nF\nOv-u\n");
  });

  it("keeps a character whose UTF-8 bytes arrive in two reads intact, and drops a CR before LF", async () => {
    const bytes = Buffer.from("Lk\tü\r\n");
    const c = await DictClient.open(sock);
    const reply = new Promise<string>((resolve) => c.sock.once("data", (d) => resolve(String(d))));
    c.sock.write(bytes.subarray(0, 5)); // ends inside ü
    c.sock.write(bytes.subarray(5));
    expect(await reply).toBe("Ov-ü\n");
    c.close();
  });

  it("ends the conversation at an empty line, like upstream", async () => {
    expect(await converse(sock, "Lk\tu\n\nLk\tu\n")).toBe("Ov-u\n");
  });

  it("drops a connection that sends a line longer than the limit, and stays up", async () => {
    expect(await converse(sock, `L${"x".repeat(MAX_LINE_BYTES + 10)}`)).toBe("");
    expect(log.lines.some((l) => l.includes("longer than"))).toBe(true);
    expect(await converse(sock, "Lk\tu\n")).toBe("Ov-u\n");
  });

  it("survives a client that disconnects mid-transaction", async () => {
    const c = await DictClient.open(sock);
    c.send("B1\tu@x");
    c.send("S1\tok/x\t1");
    c.close();
    expect(await converse(sock, "Lk\tu\n")).toBe("Ov-u\n");
  });

  it("serves 1000 concurrent connections", async () => {
    const replies = await Promise.all(Array.from({ length: 1000 }, (_, i) => converse(sock, `Lk\tu${i}\n`)));
    expect(replies.every((r, i) => r === `Ov-u${i}\n`)).toBe(true);
  });

  it("never crashes on random input: every connection is answered or closed", async () => {
    const commandLine = fc.oneof(
      fc.constantFrom(
        "H3\t2\t0\t\tauth",
        "Lk\tu",
        "I0\t0\tp/",
        "B1\tu",
        "S1\tok/a\tv",
        "S1\tbad",
        "C1",
        "R1",
        "U1\tk",
        "",
        "\u0001",
        "Lk\u0001",
      ),
      fc.string({ maxLength: 40 }),
      fc
        .tuple(
          fc.constantFrom("L", "I", "B", "S", "C", "R", "U", "H", "A"),
          fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
        )
        .map(([c, f]) => c + f.join("\t")),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(commandLine, { maxLength: 12 }), async (lines) => {
        const raw = lines.map((l) => l.replace(/\n/g, "")).join("\n");
        await converse(sock, raw);
      }),
      { numRuns: 150, seed: 4 },
    );
    expect(await converse(sock, "Lk\tu\n")).toBe("Ov-u\n");
  });

  it("closes idle connections on close() and removes nothing else", async () => {
    const c = await DictClient.open(sock);
    const closed = new Promise<void>((resolve) => c.sock.on("close", () => resolve()));
    await server.close();
    await closed;
    await expect(
      new Promise((resolve, reject) => connect(sock).on("error", reject).on("connect", resolve)),
    ).rejects.toThrow();
    // afterEach closes again: close() must be safe to call twice.
  });
});
