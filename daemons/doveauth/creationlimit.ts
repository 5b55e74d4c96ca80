// How many accounts may be created: token buckets, one for the whole relay (accountCreationsPerMinute) and one
// per client address (accountCreationsPerMinutePerClient). A bucket holds one minute's worth, so that many may
// come at once; then it refills evenly (one every 60 s / rate). Used by doveauth (first logins) and newaccount
// (/new), each with its own limiter (docs/daemons.md, 'Creation limits').
import { isIPv4, isIPv6 } from "node:net";
import type { DaemonConfig } from "../config";

export type CreationLimitConfig = Pick<
  DaemonConfig,
  "accountCreationsPerMinute" | "accountCreationsPerMinutePerClient"
>;

/** Above this many client buckets, full ones (which say nothing a missing one would not) are dropped. */
const SWEEP_ABOVE = 1024;

interface Bucket {
  tokens: number;
  at: number;
}

/** A bucket of `perMinute` tokens refilling at `perMinute` a minute. */
class Rate {
  constructor(readonly perMinute: number) {}

  refill(b: Bucket, now: number): void {
    b.tokens = Math.min(this.perMinute, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
    b.at = now;
  }

  full(): Bucket {
    return { tokens: this.perMinute, at: 0 };
  }
}

/**
 * The key a client is counted under: an IPv4 address, the /64 of an IPv6 address (one subscriber usually holds a
 * whole /64), or undefined when there is none to count by: no address, or loopback (a local proxy in front,
 * such as nginx's port-443 multiplexer, would otherwise put every client into one bucket).
 */
export function clientKey(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = mapped ? mapped[1] : address;
  if (isIPv4(ip)) return ip.startsWith("127.") ? undefined : ip;
  if (!isIPv6(ip)) return undefined;
  const groups = expandIPv6(ip);
  if (groups.every((g, i) => (i === 7 ? g === 1 : g === 0))) return undefined; // ::1
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded IPv4 tail counts as two). */
function expandIPv6(ip: string): number[] {
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  let text = ip.replace(/%.*$/, "");
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text =
      text.slice(0, text.length - v4[0].length) +
      `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const parse = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

export class CreationLimiter {
  private readonly total: Rate;
  private readonly perClient: Rate;
  private readonly totalBucket: Bucket;
  private readonly clients = new Map<string, Bucket>();

  constructor(
    config: CreationLimitConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.total = new Rate(config.accountCreationsPerMinute);
    this.perClient = new Rate(config.accountCreationsPerMinutePerClient);
    this.totalBucket = this.total.full();
  }

  /**
   * Counts one creation for `address` (as clientKey takes it) and returns undefined, or returns why it must wait
   * and counts nothing. Both buckets must have a token; a refusal takes from neither.
   */
  take(address: string | undefined): string | undefined {
    const now = this.now();
    this.total.refill(this.totalBucket, now);
    const key = clientKey(address);
    const client = key === undefined ? undefined : (this.clients.get(key) ?? this.perClient.full());
    if (client) this.perClient.refill(client, now);
    if (client && client.tokens < 1)
      return `more than ${this.perClient.perMinute} new accounts a minute from ${key} (accountCreationsPerMinutePerClient)`;
    if (this.totalBucket.tokens < 1)
      return `more than ${this.total.perMinute} new accounts a minute (accountCreationsPerMinute)`;
    this.totalBucket.tokens -= 1;
    if (client && key !== undefined) {
      client.tokens -= 1;
      this.clients.set(key, client);
      if (this.clients.size > SWEEP_ABOVE) this.sweep(now);
    }
    return undefined;
  }

  /** Client buckets held; for tests. */
  get clientCount(): number {
    return this.clients.size;
  }

  private sweep(now: number): void {
    for (const [key, b] of this.clients) {
      this.perClient.refill(b, now);
      if (b.tokens >= this.perClient.perMinute) this.clients.delete(key);
    }
  }
}
