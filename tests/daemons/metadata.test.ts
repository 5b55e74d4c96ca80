import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { startMetadata, type MetadataService } from "../../daemons/metadata";
import { TURN_CREDENTIAL_LIFETIME_S, turnCredentials } from "../../daemons/metadata/turn";
import { createQueueItem, Notifier, readQueueItem } from "../../daemons/metadata/notifier";
import { TokenStore } from "../../daemons/metadata/tokens";
import { converse, DictClient, DOMAIN, tempRelay, type TempRelay } from "./helpers";

const ADDR = `user1234x@${DOMAIN}`;
const SERVER_KEY = "shared/0123/vendor/vendor.dovecot/pvt/server/vendor/deltachat";

/** A local notification server answering each POST with the next status of `statuses` (then 200). */
async function pushServer(statuses: number[] = []) {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      bodies.push(body);
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/notify`, bodies, close: () => new Promise((r) => server.close(r)) };
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started(notificationUrl = "http://127.0.0.1:9/notify", extra: Record<string, unknown> = {}) {
  const relay = tempRelay({}, { notificationUrl, ...extra });
  cleanups.push(() => relay.cleanup());
  const log = memoryLogger("metadata");
  const sock = relay.socket("metadata");
  const service = await startMetadata(relay.config, {
    socketPath: sock,
    log,
    retryDelaysS: [0, 0.05, 0.05, 0.05, 0.05],
  });
  cleanups.push(() => service.close());
  return { relay, sock, log, service };
}

const queueDir = (relay: TempRelay) => join(relay.config.mailboxesDir, "pending_notifications");

describe("metadata dict", () => {
  it("stores a device token at S and answers it at lookup; no tokens is an empty value", async () => {
    const { sock } = await started();
    expect(await converse(sock, `Lpriv/0123/devicetoken\t${ADDR}\n`)).toBe("O\n");
    expect(await converse(sock, `HELLO\nBtx00\t${ADDR}\nStx00\tpriv/guid00/devicetoken\ttok-a\nCtx00`)).toBe(
      "O\n",
    );
    expect(await converse(sock, `Lpriv/0123/devicetoken\t${ADDR}\n`)).toBe("Otok-a\n");
  });

  it("keeps several tokens in the order they were set, and ignores an empty set", async () => {
    const { sock } = await started();
    const c = await DictClient.open(sock);
    for (const t of ["tok-2222", "tok-1111", "tok-2222", ""]) {
      c.send(`B1\t${ADDR}`);
      c.send(`S1\tpriv/g/devicetoken\t${t}`);
      expect(await c.request("C1")).toBe("O\n");
    }
    expect(await c.request(`Lpriv/x/devicetoken\t${ADDR}`)).toBe("Otok-2222 tok-1111\n");
    c.close();
  });

  it("answers server entries: iroh relay URL and max SMTP recipients; N for anything else", async () => {
    const { sock } = await started();
    const out = await converse(
      sock,
      [
        `${SERVER_KEY}/irohrelay`,
        `${SERVER_KEY}/maxsmtprecipients`,
        `${SERVER_KEY}/unknown`,
        "shared/0123/vendor/vendor.dovecot/pvt/server/wrong/prefix/key",
        "priv/123/chatmail",
        `${SERVER_KEY}/turn`,
      ]
        .map((k) => `L${k}\t${ADDR}`)
        .join("\n") + "\n",
    );
    expect(out).toBe(`Ohttps://${DOMAIN}\nO1000\nN\nN\nN\nN\n`);
  });

  it("answers the configured external iroh relay", async () => {
    const { sock } = await started(undefined, { irohRelay: "https://iroh.example.org/" });
    expect(await converse(sock, `L${SERVER_KEY}/irohrelay\t${ADDR}\n`)).toBe("Ohttps://iroh.example.org/\n");
  });

  it("fails the commit for unknown keys and refuses foreign users", async () => {
    const { sock, relay } = await started();
    expect(await converse(sock, `B1\t${ADDR}\nS1\tpriv/g/other\tx\nC1\n`)).toBe("F\n");
    expect(await converse(sock, `B1\tsomeone@other.org\nS1\tpriv/g/devicetoken\tx\nC1\n`)).toBe("F\n");
    expect(await converse(sock, `B1\t../../x@${DOMAIN}\nS1\tpriv/g/devicetoken\tx\nC1\n`)).toBe("F\n");
    expect(existsSync(join(relay.config.mailboxesDir, "someone@other.org"))).toBe(false);
  });
});

describe("push notifications", () => {
  it("posts the raw token for every device on messagenew and deletes the queue item on 200", async () => {
    const push = await pushServer();
    cleanups.push(push.close);
    const { sock, relay, service } = await started(push.url);
    await service.tokens.add(ADDR, "tok-one");
    await service.tokens.add(ADDR, "tok-two");
    expect(await converse(sock, `B2222\t${ADDR}\nS2222\tpriv/guid00/messagenew\nC2222\n`)).toBe("O\n");
    await service.notifier.idle();
    expect(push.bodies).toEqual(["tok-one", "tok-two"]);
    expect(readdirSync(queueDir(relay))).toEqual([]);
    expect(await service.tokens.get(ADDR)).toEqual(["tok-one", "tok-two"]);
  });

  it("removes a token the notification server reports gone (410)", async () => {
    const push = await pushServer([410]);
    cleanups.push(push.close);
    const { sock, service } = await started(push.url);
    await service.tokens.add(ADDR, "tok-gone");
    await service.tokens.add(ADDR, "tok-kept");
    await converse(sock, `B1\t${ADDR}\nS1\tpriv/g/messagenew\t\nC1\n`);
    await service.notifier.idle();
    expect(await service.tokens.get(ADDR)).toEqual(["tok-kept"]);
  });

  it("retries failures on the next level and drops the item after the last try", async () => {
    const push = await pushServer([500, 404, 500, 500, 500]);
    cleanups.push(push.close);
    const { sock, relay, service, log } = await started(push.url);
    await service.tokens.add(ADDR, "tok-x");
    await converse(sock, `B1\t${ADDR}\nS1\tpriv/g/messagenew\nC1\n`);
    await service.notifier.idle();
    expect(push.bodies).toEqual(["tok-x", "tok-x", "tok-x", "tok-x", "tok-x"]);
    expect(log.lines.filter((l) => l.includes("Notification request failed")).length).toBe(5);
    expect(log.lines.some((l) => l.includes("notification exceeded deadline"))).toBe(true);
    expect(log.lines.some((l) => l.includes("tok-x"))).toBe(false); // tokens are never logged
    expect(readdirSync(queueDir(relay))).toEqual([]);
  });

  it("retries after a network error and succeeds", async () => {
    const push = await pushServer();
    cleanups.push(push.close);
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const tokens = new TokenStore(relay.config.mailboxesDir, memoryLogger());
    await tokens.add(ADDR, "tok-net");
    let calls = 0;
    const notifier = new Notifier({
      queueDir: queueDir(relay),
      notificationUrl: push.url,
      tokens,
      log: memoryLogger(),
      retryDelaysS: [0, 0.02, 0.02, 0.02, 0.02],
      fetchImpl: (async (url: string, init: RequestInit) => {
        if (calls++ === 0) throw new TypeError("fetch failed");
        return fetch(url, init);
      }) as typeof fetch,
    });
    await notifier.newMessage(ADDR);
    await notifier.idle();
    expect(push.bodies).toEqual(["tok-net"]);
    expect(readdirSync(queueDir(relay))).toEqual([]);
  });

  it("keeps queue items on disk over a restart and sends them afterwards", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    mkdirSync(queueDir(relay), { recursive: true });
    const item = await createQueueItem(queueDir(relay), ADDR, Math.trunc(Date.now() / 1000), "tok-persist");
    writeFileSync(join(queueDir(relay), "1203981203.tmp"), "x");
    writeFileSync(join(queueDir(relay), "1203981203"), "");
    const push = await pushServer();
    cleanups.push(push.close);
    const log = memoryLogger();
    const service: MetadataService = await startMetadata(
      { ...relay.config, notificationUrl: push.url },
      { socketPath: relay.socket("m"), log },
    );
    cleanups.push(() => service.close());
    await service.notifier.idle();
    expect(push.bodies).toEqual(["tok-persist"]);
    expect(log.lines.filter((l) => l.includes("removing spurious queue item")).length).toBe(2);
    expect(existsSync(item.path)).toBe(false);
  });

  it("drops queued items whose 5 hour deadline passed while the daemon was down", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    mkdirSync(queueDir(relay), { recursive: true });
    await createQueueItem(queueDir(relay), ADDR, Math.trunc(Date.now() / 1000) - 6 * 3600, "tok-old");
    const push = await pushServer();
    cleanups.push(push.close);
    const log = memoryLogger();
    const service = await startMetadata(
      { ...relay.config, notificationUrl: push.url },
      { socketPath: relay.socket("m"), log },
    );
    cleanups.push(() => service.close());
    await service.notifier.idle();
    expect(push.bodies).toEqual([]);
    expect(readdirSync(queueDir(relay))).toEqual([]);
  });

  it("writes and reads queue items in upstream's format", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    mkdirSync(queueDir(relay), { recursive: true });
    const item = await createQueueItem(queueDir(relay), ADDR, 1700000000, "tok\nwith-newline");
    expect(readFileSync(item.path, "utf8")).toBe(`${ADDR}\n1700000000\ntok\nwith-newline`);
    expect(await readQueueItem(item.path)).toEqual(item);
  });
});

describe("token store", () => {
  it("shares tokens between instances on the same directory and removes missing tokens quietly", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const a = new TokenStore(relay.config.mailboxesDir, memoryLogger());
    const b = new TokenStore(relay.config.mailboxesDir, memoryLogger());
    await a.add(ADDR, "t1");
    expect(await b.get(ADDR)).toEqual(["t1"]);
    await b.remove(ADDR, "never-set");
    await b.remove(`nobody123@${DOMAIN}`, "t1");
    expect(await a.get(ADDR)).toEqual(["t1"]);
  });

  it("expires tokens 90 days after they were last set", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    let now = 1_700_000_000;
    const store = new TokenStore(relay.config.mailboxesDir, memoryLogger(), () => now);
    await store.add(ADDR, "old");
    now += 80 * 86400;
    await store.add(ADDR, "new");
    now += 11 * 86400;
    expect(await store.get(ADDR)).toEqual(["new"]);
    const file = JSON.parse(readFileSync(join(relay.config.mailboxesDir, ADDR, "metadata.json"), "utf8"));
    expect(Object.keys(file.devicetoken)).toEqual(["new"]);
  });

  it("migrates the legacy list format and reads a corrupt file as empty", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const log = memoryLogger();
    const store = new TokenStore(relay.config.mailboxesDir, log);
    mkdirSync(join(relay.config.mailboxesDir, ADDR));
    const file = join(relay.config.mailboxesDir, ADDR, "metadata.json");
    writeFileSync(file, JSON.stringify({ devicetoken: ["l1", "l2"] }));
    expect(await store.get(ADDR)).toEqual(["l1", "l2"]);
    expect(Object.keys(JSON.parse(readFileSync(file, "utf8")).devicetoken)).toEqual(["l1", "l2"]);
    writeFileSync(file, "{garbage");
    expect(await store.get(ADDR)).toEqual([]);
    expect(log.lines[0]).toContain("corrupt");
  });
});

describe("turn entry", () => {
  const SECRET = "0123456789abcdef0123456789abcdef";

  it("hands out fresh TURN REST credentials: expiry username and HMAC-SHA1 password of the server's secret", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const svc = await startMetadata(relay.config, {
      socketPath: relay.socket("m"),
      log: memoryLogger(),
      turnSecret: SECRET,
    });
    cleanups.push(() => svc.close());
    const before = Math.floor(Date.now() / 1000);
    const reply = await converse(relay.socket("m"), `L${SERVER_KEY}/turn\t${ADDR}\n`);
    const m = /^O(.+):3478:(\d+):(\S+)\n$/.exec(reply);
    expect(m, reply).not.toBeNull();
    const [, host, username, password] = m!;
    expect(host).toBe(DOMAIN);
    const expiry = Number(username);
    expect(expiry - before).toBeGreaterThanOrEqual(TURN_CREDENTIAL_LIFETIME_S);
    expect(expiry - before).toBeLessThanOrEqual(TURN_CREDENTIAL_LIFETIME_S + 2);
    expect(password).toBe(createHmac("sha1", SECRET).update(username).digest("base64"));
    expect(turnCredentials(SECRET, 1000, 60)).toEqual({
      username: "1060",
      password: createHmac("sha1", SECRET).update("1060").digest("base64"),
    });
  });

  it("is absent without a TURN secret (turnServer false)", async () => {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const svc = await startMetadata(relay.config, { socketPath: relay.socket("m"), log: memoryLogger() });
    cleanups.push(() => svc.close());
    expect(await converse(relay.socket("m"), `L${SERVER_KEY}/turn\t${ADDR}\n`)).toBe("N\n");
  });
});

describe("appversions entry", () => {
  async function withFile(content: string | undefined) {
    const relay = tempRelay();
    cleanups.push(() => relay.cleanup());
    const path = join(relay.dir, "appversions.json");
    if (content !== undefined) writeFileSync(path, content);
    const log = memoryLogger();
    const svc = await startMetadata(relay.config, {
      socketPath: relay.socket("m"),
      log,
      appVersionsPath: path,
    });
    cleanups.push(() => svc.close());
    const lookup = () => converse(relay.socket("m"), `L${SERVER_KEY}/appversions\t${ADDR}\n`);
    return { lookup, log, path };
  }

  it("answers the file as one line of compact JSON, re-read at each lookup", async () => {
    const { lookup, path } = await withFile('{\n  "clients": [],\n  "note": "a\\nb"\n}\n');
    expect(await lookup()).toBe('O{"clients":[],"note":"a\\nb"}\n');
    writeFileSync(path, '{"clients": [1]}');
    expect(await lookup()).toBe('O{"clients":[1]}\n');
  });

  it("is absent without the file, and absent with a logged error when the file is not JSON", async () => {
    const missing = await withFile(undefined);
    expect(await missing.lookup()).toBe("N\n");
    expect(missing.log.lines).toEqual([]);
    const broken = await withFile("{not json");
    expect(await broken.lookup()).toBe("N\n");
    expect(broken.log.lines.join("\n")).toMatch(/failed to read .*appversions\.json/);
  });
});
