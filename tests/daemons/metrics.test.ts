// chatmaild's metrics: the registry's text format, the gauges read from the server (with stand-ins for Postfix's
// showq service and systemctl, a real certificate from openssl) and the HTTP listener. Postfix's real showq is
// read in tests/filtermail/postfix.test.ts.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { startMetrics, type MetricsService } from "../../daemons/metrics";
import { combos, CONTENT_TYPE, escapeHelp, escapeLabelValue, Registry } from "../../daemons/metrics/registry";
import { relayMetrics, REFUSAL_REASONS } from "../../daemons/metrics/relay";
import { parseFacts, readShowq, runLines } from "../../daemons/metrics/system";
import { VERDICT_RULES } from "../../daemons/filtermail/verdict";
import { DOMAIN, tempRelay, type TempRelay } from "./helpers";

const relays: TempRelay[] = [];
const services: MetricsService[] = [];
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
  for (const c of cleanups.splice(0)) await c();
  for (const r of relays.splice(0)) r.cleanup();
});

/** No Postfix: a showq socket that does not exist (the queue gauges are left out). */
const NO_SHOWQ = "/nonexistent/showq";

interface ShowqMessage {
  queue: string;
  id: string;
  time: number;
  recipients: Array<[string, string]>;
}

/**
 * A stand-in for Postfix's showq service, writing what src/showq/showq.c writes (null-terminated attributes, a
 * lone NUL ending a list): the protocol list, one list per message, an empty list at the end. `chunk` splits the
 * stream into writes of that many bytes.
 */
async function fakeShowq(path: string, queue: () => ShowqMessage[], chunk = 0): Promise<Server> {
  const attrs = (pairs: Array<[string, string | number]>) => pairs.map(([k, v]) => `${k}\0${v}\0`).join("");
  const server = createServer((conn) => {
    const text =
      attrs([["protocol", "mail_queue_list_protocol"]]) +
      "\0" +
      queue()
        .map(
          (m) =>
            attrs([
              ["queue_name", m.queue],
              ["queue_id", m.id],
              ["time", m.time],
              ["size", 1234],
              ["forced_expire", 0],
              ["sender", "a@chat.example.org"],
              ...m.recipients.flatMap(([r, why]): Array<[string, string]> => [
                ["recipient", r],
                ["reason", why],
              ]),
            ]) + "\0",
        )
        .join("") +
      "\0";
    const bytes = Buffer.from(text, "latin1");
    if (chunk === 0) conn.end(bytes);
    else {
      for (let i = 0; i < bytes.length; i += chunk) conn.write(bytes.subarray(i, i + chunk));
      conn.end();
    }
    conn.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(path, r));
  return server;
}

/** The value of one sample line `name{labels} value` in a text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("the registry's text format", () => {
  it("escapes label values (backslash, quote, line feed) and help texts (backslash, line feed)", () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
    const r = new Registry();
    r.gauge("x_info", 'Help with "quotes", a \\ and\na line break.', {
      series: [{ path: 'C:\\dir "x"\ny' }],
    }).set(1, { path: 'C:\\dir "x"\ny' });
    expect(r.text()).toBe(
      '# HELP x_info Help with "quotes", a \\\\ and\\na line break.\n' +
        "# TYPE x_info gauge\n" +
        'x_info{path="C:\\\\dir \\"x\\"\\ny"} 1\n',
    );
  });

  it("orders metrics by name, each with HELP and TYPE first, series in declared order with sorted label names", () => {
    const r = new Registry();
    const b = r.counter("b_events_total", "B.", { series: combos({ z: ["2", "1"], a: ["x"] }) });
    r.gauge("a_bytes", "A.").set(5);
    b.inc({ a: "x", z: "1" }, 3);
    expect(r.text()).toBe(
      "# HELP a_bytes A.\n# TYPE a_bytes gauge\na_bytes 5\n" +
        "# HELP b_events_total B.\n# TYPE b_events_total counter\n" +
        'b_events_total{a="x",z="2"} 0\nb_events_total{a="x",z="1"} 3\n',
    );
  });

  it("names counters with _total and only counters; a counter never goes down", () => {
    const r = new Registry();
    expect(() => r.counter("chatmail_logins", "x")).toThrow(/must end with _total/);
    expect(() => r.gauge("chatmail_things_total", "x")).toThrow(/must not end with _total/);
    expect(() => r.gauge("bad-name", "x")).toThrow(/bad metric name/);
    const c = r.counter("c_total", "x");
    expect(() => c.inc({}, -1)).toThrow(/cannot go down/);
    expect(() => r.counter("c_total", "again")).toThrow(/registered twice/);
  });

  it("starts counters at 0, leaves unset gauges out, and writes NaN and infinities as Prometheus reads them", () => {
    const r = new Registry();
    r.counter("c_total", "C.");
    const g = r.gauge("g", "G.", { series: combos({ k: ["a", "b", "c"] }) });
    expect(r.text()).toBe("# HELP c_total C.\n# TYPE c_total counter\nc_total 0\n");
    g.set(NaN, { k: "a" });
    g.set(Infinity, { k: "b" });
    g.set(-Infinity, { k: "c" });
    expect(r.text()).toContain('g{k="a"} NaN\ng{k="b"} +Inf\ng{k="c"} -Inf\n');
    g.set(undefined, { k: "b" });
    expect(r.text()).not.toContain('k="b"');
  });

  it("drops label values that were not declared, so no input can add series; warns once", () => {
    const log = memoryLogger("metrics");
    const r = new Registry((m) => log.warn(m));
    const c = r.counter("c_total", "C.", { series: combos({ via: ["login"] }) });
    c.inc({ via: "login" });
    c.inc({ via: "alice@example.org" });
    c.inc({ via: "bob@example.org" });
    expect(
      r
        .text()
        .split("\n")
        .filter((l) => l.startsWith("c_total")),
    ).toEqual(['c_total{via="login"} 1']);
    expect(log.lines.filter((l) => l.includes("dropping undeclared labels"))).toHaveLength(1);
  });

  it("declares a small fixed set of series for the relay's metrics", () => {
    const m = relayMetrics();
    const lines = m.registry
      .text()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"));
    const verdicts = Object.values(VERDICT_RULES).flatMap((d) => [...d.accepted, ...d.refused]).length;
    // 2 vias, 7 reasons, 2 login results, every verdict rule, the rate limit, 2 push counters, 2 gauges.
    expect(lines).toHaveLength(2 + REFUSAL_REASONS.length + 2 + verdicts + 1 + 2 + 2);
    expect(lines).toContain('chatmail_account_creation_refusals_total{reason="invite"} 0');
    expect(lines).toContain(
      'chatmail_filter_verdicts_total{direction="outgoing",rule="cleartext",verdict="refused"} 0',
    );
    expect(lines).toContain("chatmail_last_incoming_delivery_timestamp_seconds 0");
  });
});

/** An executable shell script in the relay's directory. */
function script(relay: TempRelay, name: string, body: string): string {
  const path = join(relay.dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A self-signed certificate valid for `days`, made by openssl; its notAfter as openssl prints it. */
function certificate(relay: TempRelay, days: number): { path: string; notAfter: number } {
  const path = join(relay.dir, "cert.pem");
  const key = join(relay.dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
    "-out", path, "-days", String(days), "-subj", `/CN=${DOMAIN}`,
  ], { stdio: "ignore" }); // prettier-ignore
  const end = execFileSync("openssl", ["x509", "-in", path, "-noout", "-enddate"], { encoding: "utf8" });
  return { path, notAfter: Date.parse(end.trim().replace(/^notAfter=/, "")) / 1000 };
}

/** Makes an account directory as doveauth leaves it (a password file), or an empty one. */
function account(relay: TempRelay, addr: string, password = "{PBKDF2}x"): void {
  mkdirSync(join(relay.config.mailboxesDir, addr), { recursive: true });
  writeFileSync(join(relay.config.mailboxesDir, addr, "password"), password);
}

async function serve(relay: TempRelay, opts: Parameters<typeof startMetrics>[1] = {}) {
  const metrics = relayMetrics();
  const log = memoryLogger("metrics");
  const service = await startMetrics(relay.config, { port: 0, metrics, log, ...opts });
  services.push(service);
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${service.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(CONTENT_TYPE);
    return res.text();
  };
  return { metrics, log, scrape, service };
}

describe("the gauges read from the server", () => {
  it("counts accounts with a password file, at most once a minute however often it is scraped", async () => {
    const relay = tempRelay();
    relays.push(relay);
    let now = 1_000_000;
    account(relay, `first1234@${DOMAIN}`);
    account(relay, `second123@${DOMAIN}`);
    account(relay, `emptypass@${DOMAIN}`, ""); // an empty password file is no account
    mkdirSync(join(relay.config.mailboxesDir, "pending_notifications"));
    const { scrape } = await serve(relay, { facts: { units: [] }, now: () => now, showqSocket: NO_SHOWQ });
    expect(sample(await scrape(), "chatmail_accounts")).toBe(2);
    account(relay, `third1234@${DOMAIN}`);
    now += 59_000;
    expect(sample(await scrape(), "chatmail_accounts")).toBe(2);
    now += 1_000;
    expect(sample(await scrape(), "chatmail_accounts")).toBe(3);
  });

  it("reads Postfix's queue from showq: messages and the oldest one's age; absent and logged once when it fails", async () => {
    const relay = tempRelay();
    relays.push(relay);
    let now = 1_700_000_100_000;
    const socket = join(relay.dir, "showq");
    const queue: ShowqMessage[] = [
      { queue: "deferred", id: "A1", time: 1700000090, recipients: [["b@example.org", "connect timed out"]] },
      {
        queue: "active",
        id: "B2",
        time: 1700000000,
        recipients: [
          ["c@example.org", ""],
          ["d@example.org", ""],
        ],
      },
      { queue: "incoming", id: "C3", time: 1700000050, recipients: [] },
    ];
    let showq = await fakeShowq(socket, () => queue);
    const { scrape, log } = await serve(relay, { facts: { units: [] }, now: () => now, showqSocket: socket });
    let text = await scrape();
    expect(sample(text, "chatmail_postfix_queue_messages")).toBe(3);
    expect(sample(text, "chatmail_postfix_queue_oldest_age_seconds")).toBe(100);
    // Postfix stopped: the gauges go, and one info line (no warning) says why.
    await new Promise((r) => showq.close(r));
    for (let i = 0; i < 3; i++) {
      now += 60_000;
      text = await scrape();
    }
    expect(sample(text, "chatmail_postfix_queue_messages")).toBeUndefined();
    expect(text).not.toContain("chatmail_postfix_queue_oldest_age_seconds");
    const down = log.lines.filter((l) => l.includes("Postfix is not running"));
    expect(down).toHaveLength(1);
    expect(down[0]).not.toMatch(/WARNING|ERROR/);
    // Back, with an empty queue.
    showq = await fakeShowq(socket, () => []);
    cleanups.push(() => new Promise((r) => showq.close(r)));
    now += 60_000;
    text = await scrape();
    expect(sample(text, "chatmail_postfix_queue_messages")).toBe(0);
    expect(sample(text, "chatmail_postfix_queue_oldest_age_seconds")).toBe(0);
    expect(log.lines.filter((l) => l.includes("works again"))).toHaveLength(1);
  });

  it("parses showq's stream whatever its chunks, and refuses what is not showq", async () => {
    const relay = tempRelay();
    relays.push(relay);
    const socket = join(relay.dir, "showq");
    const messages: ShowqMessage[] = Array.from({ length: 50 }, (_, i) => ({
      queue: "deferred",
      id: `ID${i}`,
      time: 1700000000 + ((i * 7919) % 1000),
      recipients: [[`r${i}@example.org`, i % 2 ? "" : "4.4.1 host unreachable"]],
    }));
    const server = await fakeShowq(socket, () => messages, 7);
    cleanups.push(() => new Promise((r) => server.close(r)));
    expect(await readShowq(socket)).toEqual({ messages: 50, oldest: 1700000000 });
    const other = join(relay.dir, "other");
    const wrong = createServer((c) => c.end(Buffer.from("protocol\0smtp\0\0\0", "latin1")));
    await new Promise<void>((r) => wrong.listen(other, r));
    cleanups.push(() => new Promise((r) => wrong.close(r)));
    await expect(readShowq(other)).rejects.toThrow(/unexpected protocol/);
    const cut = join(relay.dir, "cut");
    const short = createServer((c) =>
      c.end(Buffer.from("protocol\0mail_queue_list_protocol\0\0queue_name\0active\0", "latin1")),
    );
    await new Promise<void>((r) => short.listen(cut, r));
    cleanups.push(() => new Promise((r) => short.close(r)));
    await expect(readShowq(cut)).rejects.toThrow(/closed before the end/);
    await expect(readShowq(join(relay.dir, "none"))).rejects.toThrow(/Postfix is not running \(ENOENT/);
  });

  it("hands a command's output over line by line, a last line without LF included", async () => {
    const relay = tempRelay();
    relays.push(relay);
    // Lines split across writes, an empty line, and a last line without LF.
    const cmd = script(
      relay,
      "lines",
      "printf 'one\\ntw'; sleep 0.05; printf 'o\\n\\nthree'; echo oops >&2; exit 3",
    );
    const lines: string[] = [];
    const result = await runLines([cmd], (line) => lines.push(line));
    expect(lines).toEqual(["one", "two", "", "three"]);
    expect(result).toEqual({ code: 3, stderr: "oops" });
  });

  it("reports each unit of the facts file as active (1) or not (0) from systemctl is-active", async () => {
    const relay = tempRelay();
    relays.push(relay);
    const systemctl = script(
      relay,
      "systemctl",
      'for u in "$@"; do case $u in is-active) ;; postfix.service) echo active ;; nginx.service) echo reloading ;; *) echo failed ;; esac; done; exit 3',
    );
    const { scrape } = await serve(relay, {
      facts: { units: ["postfix.service", "nginx.service", "dovecot.service"] },
      systemctl,
      showqSocket: NO_SHOWQ,
    });
    const text = await scrape();
    expect(sample(text, 'chatmail_unit_active{unit="postfix.service"}')).toBe(1);
    expect(sample(text, 'chatmail_unit_active{unit="nginx.service"}')).toBe(1);
    expect(sample(text, 'chatmail_unit_active{unit="dovecot.service"}')).toBe(0);
  });

  it("reports the certificate's notAfter, and -1 (logged once) when it cannot be read", async () => {
    const relay = tempRelay();
    relays.push(relay);
    const cert = certificate(relay, 30);
    const { scrape } = await serve(relay, {
      facts: { units: [], tlsCert: cert.path },
      showqSocket: NO_SHOWQ,
    });
    const expiry = sample(await scrape(), "chatmail_certificate_expiry_timestamp_seconds");
    expect(expiry).toBe(cert.notAfter);
    expect(expiry! - Date.now() / 1000).toBeGreaterThan(29 * 86400);
    const missing = await serve(relay, {
      facts: { units: [], tlsCert: join(relay.dir, "nope.pem") },
      showqSocket: NO_SHOWQ,
      metrics: relayMetrics(),
    });
    expect(sample(await missing.scrape(), "chatmail_certificate_expiry_timestamp_seconds")).toBe(-1);
    await missing.scrape();
    expect(missing.log.lines.filter((l) => l.includes("nope.pem"))).toHaveLength(1);
  });

  it("reports free disk and available memory next to the creation limits", async () => {
    const relay = tempRelay({ min_free_disk_space: "2G", min_available_memory: "300M" });
    relays.push(relay);
    const meminfo = join(relay.dir, "meminfo");
    writeFileSync(meminfo, "MemTotal:       2000000 kB\nMemAvailable:    1234567 kB\n");
    const { scrape } = await serve(relay, { facts: { units: [] }, meminfo, showqSocket: NO_SHOWQ });
    const text = await scrape();
    expect(sample(text, "chatmail_disk_min_free_bytes")).toBe(2 * 1024 ** 3);
    expect(sample(text, "chatmail_memory_min_available_bytes")).toBe(300 * 1024 ** 2);
    expect(sample(text, "chatmail_memory_available_bytes")).toBe(1234567 * 1024);
    expect(sample(text, "chatmail_disk_free_bytes")).toBeGreaterThan(0);
  });

  it("reads the facts file the plan writes, and refuses lines it does not know", () => {
    expect(
      parseFacts("# comment\ntls_cert /etc/ssl/a.pem\nunit postfix.service\nunit chatmail-expire.timer\n"),
    ).toEqual({
      units: ["postfix.service", "chatmail-expire.timer"],
      tlsCert: "/etc/ssl/a.pem",
    });
    expect(() => parseFacts("unit $(reboot)\n")).toThrow(/line 1/);
    expect(() => parseFacts("tls_cert relative.pem\n")).toThrow(/line 1/);
  });
});

describe("the metrics listener", () => {
  it("binds metricsAddress (127.0.0.1 by default) and serves only /metrics, to GET", async () => {
    const relay = tempRelay();
    relays.push(relay);
    expect(relay.config.metricsAddress).toBe("127.0.0.1");
    const { service, scrape } = await serve(relay, { facts: { units: [] }, showqSocket: NO_SHOWQ });
    const text = await scrape();
    expect(text).toContain("# TYPE chatmail_accounts gauge\n");
    expect(text).toContain("process_resident_memory_bytes ");
    const base = `http://127.0.0.1:${service.port}`;
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
    // Nothing answers on another address of the machine: the listener is bound to loopback only.
    const { networkInterfaces } = await import("node:os");
    const other = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal);
    if (other) await expect(fetch(`http://${other.address}:${service.port}/metrics`)).rejects.toThrow();
  });

  it("logs a missing facts file and serves the rest", async () => {
    const relay = tempRelay();
    relays.push(relay);
    const { scrape, log } = await serve(relay, {
      factsPath: join(relay.dir, "missing.conf"),
      showqSocket: NO_SHOWQ,
    });
    const text = await scrape();
    expect(text).not.toContain("chatmail_unit_active");
    expect(text).not.toContain("chatmail_certificate_expiry_timestamp_seconds");
    expect(text).toContain("chatmail_accounts 0");
    expect(
      log.lines.some((l) => l.includes("missing.conf") && l.includes("no unit or certificate metrics")),
    ).toBe(true);
  });
});
