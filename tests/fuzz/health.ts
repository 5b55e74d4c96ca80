// Valid requests with known answers, asked after fuzz input to show that each daemon still does its job: the
// health account's record (and a wrong password changes nothing), its stored push token, its last-login day,
// and an encrypted message passing filtermail to the sink byte for byte while a cleartext one is refused.
import { statSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { RawClient } from "../filtermail/harness";
import { sample } from "../filtermail/samples";
import { DOMAIN, type Relay } from "./relay";
import { runSession } from "./session";

/** A local part of exactly the default 9 characters, so doveauth creates it. */
export const HEALTH_USER = `healthchk@${DOMAIN}`;
const HEALTH_PASSWORD = "health-password-42";
const HEALTH_TOKEN = "health-device-token";
const FOREIGN = "alice@example.net";
const CHECK_DEADLINE_MS = 20_000;

const SERVER_ENTRY = "shared/0123/vendor/vendor.dovecot/pvt/server/vendor/deltachat/maxsmtprecipients";

async function converse(socketPath: string, text: string): Promise<string> {
  const r = await runSession({ path: socketPath }, [Buffer.from(text)], "end", CHECK_DEADLINE_MS);
  if (r.timedOut) throw new Error(`no answer within ${CHECK_DEADLINE_MS} ms to ${JSON.stringify(text)}`);
  return r.output.toString("utf8");
}

async function within<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${CHECK_DEADLINE_MS} ms`)),
      CHECK_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export class Health {
  private day = 0;
  /** Numbers the health messages, so that a fuzz message still on its way cannot pass for one. */
  private sent = 0;

  private constructor(
    private readonly relay: Relay,
    /** doveauth's answer for the health account, as first given. */
    private readonly record: string,
  ) {}

  /** Creates the health account by its first login and gives it a push token. */
  static async prepare(relay: Relay): Promise<Health> {
    const record = await converse(
      relay.sockets.doveauth,
      `Lshared/passdb/${HEALTH_PASSWORD}"${HEALTH_USER}\t${HEALTH_USER}\n`,
    );
    const fields = JSON.parse(record.slice(1)) as Record<string, string>;
    expect(fields).toMatchObject({ addr: HEALTH_USER, home: join(relay.mailboxesDir, HEALTH_USER) });
    // Any of Dovecot's schemes ({PBKDF2} or {SHA512-CRYPT}): which one doveauth uses is not this layer's concern.
    expect(fields.password).toMatch(/^\{[A-Z0-9-]+\}\$/);
    expect(
      await converse(
        relay.sockets.metadata,
        `B1\t${HEALTH_USER}\nS1\tpriv/0123/devicetoken\t${HEALTH_TOKEN}\nC1\n`,
      ),
    ).toBe("O\n");
    return new Health(relay, record);
  }

  async doveauth(): Promise<void> {
    const answer = await converse(
      this.relay.sockets.doveauth,
      `Lshared/userdb/${HEALTH_USER}\t${HEALTH_USER}\nLshared/passdb/wrong-password-9"${HEALTH_USER}\t${HEALTH_USER}\n`,
    );
    expect(answer, "doveauth: the health account's record, unchanged").toBe(this.record + this.record);
  }

  async metadata(): Promise<void> {
    const answer = await converse(
      this.relay.sockets.metadata,
      `Lpriv/0123/devicetoken\t${HEALTH_USER}\nL${SERVER_ENTRY}\t${HEALTH_USER}\n`,
    );
    expect(answer, "metadata: the health account's token and a server entry").toBe(
      `O${HEALTH_TOKEN}\nO1000\n`,
    );
  }

  /** Sets a new last-login day each time and reads it back from the password file's mtime. */
  async lastlogin(): Promise<void> {
    const day = 19_000 + (this.day++ % 1000);
    const answer = await converse(
      this.relay.sockets.lastlogin,
      `B1\t${HEALTH_USER}\nS1\tshared/last-login/${HEALTH_USER}\t${day * 86400 + 4321}\nC1\n`,
    );
    expect(answer, "lastlogin: commit of a valid last-login").toBe("O\n");
    const mtime = Math.trunc(statSync(join(this.relay.mailboxesDir, HEALTH_USER, "password")).mtimeMs / 1000);
    expect(mtime, "lastlogin: the password file's mtime is the day").toBe(day * 86400);
  }

  /** Outgoing: the health account mails a foreign address. Incoming: a foreign address mails the account. */
  async filtermail(direction: "outgoing" | "incoming"): Promise<void> {
    const [from, to] = direction === "outgoing" ? [HEALTH_USER, FOREIGN] : [FOREIGN, HEALTH_USER];
    const port = direction === "outgoing" ? this.relay.ports.outgoing : this.relay.ports.incoming;
    const sink = this.relay.sinks[direction];
    sink.delivered.length = 0;
    const subject = `health check ${++this.sent}`;
    const mine = () => sink.delivered.filter((d) => d.message.includes(subject));
    const client = await within(`filtermail ${direction}: connect`, RawClient.connect(port));
    try {
      const encrypted = sample("encrypted", from, to, subject);
      const accepted = await within(`filtermail ${direction}`, client.sendMail(from, [to], encrypted));
      expect(accepted, `filtermail ${direction}: an encrypted message is accepted`).toMatch(/^250 /);
      // Fuzz sessions dropped mid-transfer may still deliver now; the health message is told apart by subject.
      const reached = mine().map((d) => [d.envelope.mailFrom, d.envelope.rcptTos]);
      expect(reached, `filtermail ${direction}: the envelope of the health message`).toEqual([[from, [to]]]);
      expect(mine()[0].message.equals(encrypted), "the sink got the message byte for byte").toBe(true);
      const refused = await within(
        `filtermail ${direction}`,
        client.transaction(from, [to], sample("plain", from, to, subject)),
      );
      expect(refused, `filtermail ${direction}: a cleartext message is refused`).toMatch(/^523 /);
      expect(mine(), "only the encrypted message reached the sink").toHaveLength(1);
    } finally {
      client.close();
    }
  }

  async all(): Promise<void> {
    await this.doveauth();
    await this.metadata();
    await this.lastlogin();
    await this.filtermail("outgoing");
    await this.filtermail("incoming");
  }
}
