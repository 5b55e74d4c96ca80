// Push notifications for new messages (docs/daemons.md, 'Push notifications'; upstream: chatmail/relay 1.12.0,
// chatmaild/src/chatmaild/notifier.py). Each (address, device token) becomes a queue file in
// <mailboxesDir>/pending_notifications before anything is sent, so a restart loses nothing; the file goes once
// the notification server answers 200, or 410 (token gone: it is also removed from the account). Other answers and
// network errors retry after 0, 8, 64, 512 and 4096 s; an item older than 5 h or out of tries is dropped.
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../dictproxy/log";
import { METRICS, type RelayMetrics } from "../metrics/relay";
import type { TokenStore } from "./tokens";

/** Delay before try n (seconds): 0, 8, 64, 512, 4096 = 8^n, upstream's schedule. */
export const RETRY_DELAYS_S = [0, 8, 64, 512, 4096] as const;
/** An item is dropped when its next try would start later than this after the first. */
export const DROP_DEADLINE_S = 5 * 60 * 60;
/** Requests in flight per retry level: first tries get more, like upstream's 4 + 2 per level threads. */
export const CONCURRENCY_PER_LEVEL = [4, 2, 2, 2, 2] as const;
export const REQUEST_TIMEOUT_MS = 60_000;

export interface QueueItem {
  readonly path: string;
  readonly addr: string;
  readonly startTs: number;
  readonly token: string;
}

/** Writes a queue item file: "addr\nstart_ts\ntoken" (upstream's format), via a .tmp and rename. */
export async function createQueueItem(
  queueDir: string,
  addr: string,
  startTs: number,
  token: string,
): Promise<QueueItem> {
  const path = join(queueDir, randomUUID().replace(/-/g, ""));
  await writeFile(`${path}.tmp`, `${addr}\n${startTs}\n${token}`);
  await rename(`${path}.tmp`, path);
  return { path, addr, startTs, token };
}

/** Reads a queue item, or undefined when the file is not one. */
export async function readQueueItem(path: string): Promise<QueueItem | undefined> {
  const text = await readFile(path, "utf8");
  const first = text.indexOf("\n");
  const second = text.indexOf("\n", first + 1);
  if (first <= 0 || second === -1) return undefined;
  const ts = text.slice(first + 1, second);
  if (!/^\d+$/.test(ts)) return undefined;
  return { path, addr: text.slice(0, first), startTs: Number(ts), token: text.slice(second + 1) };
}

/** A short, non-reversible label for a token in logs: tokens are secrets of the device. */
export function tokenLabel(token: string): string {
  let h = 0;
  for (let i = 0; i < token.length; i++) h = (h * 31 + token.charCodeAt(i)) >>> 0;
  return `token#${h.toString(16).padStart(8, "0")}`;
}

export interface NotifierOptions {
  queueDir: string;
  notificationUrl: string;
  tokens: TokenStore;
  log: Logger;
  /** Seconds per retry level; tests shorten them. */
  retryDelaysS?: readonly number[];
  now?: () => number;
  fetchImpl?: typeof fetch;
  /** The metrics to move (default: the process's own). */
  metrics?: RelayMetrics;
}

interface Pending {
  when: number;
  item: QueueItem;
}

/** The push queue: one level per retry, each with its own number of requests in flight. */
export class Notifier {
  private readonly delays: readonly number[];
  private readonly now: () => number;
  private readonly fetchImpl: typeof fetch;
  private readonly metrics: RelayMetrics;
  /** Items waiting per retry level, the earliest due first. */
  private readonly levels: Pending[][];
  private readonly inFlight: number[];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly controllers = new Set<AbortController>();
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly opts: NotifierOptions) {
    this.delays = opts.retryDelaysS ?? RETRY_DELAYS_S;
    this.now = opts.now ?? (() => Date.now() / 1000);
    this.fetchImpl = opts.fetchImpl ?? fetch;
    this.metrics = opts.metrics ?? METRICS;
    this.levels = this.delays.map(() => []);
    this.inFlight = this.delays.map(() => 0);
  }

  /** Queues one notification per valid token of `addr`. */
  async newMessage(addr: string): Promise<void> {
    const startTs = Math.trunc(this.now());
    await mkdir(this.opts.queueDir, { recursive: true });
    for (const token of await this.opts.tokens.get(addr)) {
      await this.queueForRetry(await createQueueItem(this.opts.queueDir, addr, startTs, token), 0);
    }
  }

  /** Re-reads the queue directory (startup): spurious files removed, valid items tried again. */
  async requeue(): Promise<void> {
    const { queueDir, log } = this.opts;
    await mkdir(queueDir, { recursive: true });
    for (const name of (await readdir(queueDir)).sort()) {
      const path = join(queueDir, name);
      const item = name.endsWith(".tmp") ? undefined : await readQueueItem(path).catch(() => undefined);
      if (!item) {
        log.warn(`removing spurious queue item: ${path}`);
        await unlink(path).catch(() => {});
        continue;
      }
      // The deadline keeps counting from the first attempt.
      await this.queueForRetry(item, 0);
    }
  }

  /** Resolves when no request is in flight and nothing is due (tests). */
  idle(): Promise<void> {
    return this.isIdle() ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    for (const c of this.controllers) c.abort();
    this.wakeIdleWaiters();
  }

  /** Puts an item on retry level `level`, or drops it once it is out of tries or past its deadline. */
  private async queueForRetry(item: QueueItem, level: number): Promise<void> {
    const when = this.now() + (this.delays[level] ?? Infinity);
    if (level >= this.delays.length || when > item.startTs + DROP_DEADLINE_S) {
      await dropItem(item);
      this.opts.log.error(`notification exceeded deadline: ${tokenLabel(item.token)} for ${item.addr}`);
      this.checkIdle();
      return;
    }
    const queue = this.levels[level];
    queue.push({ when, item });
    queue.sort((a, b) => a.when - b.when || a.item.startTs - b.item.startTs);
    this.countRetries();
    this.pump(level);
  }

  /** Sets chatmail_push_retry_queue: items past their first try, waiting or in flight. */
  private countRetries(): void {
    let n = 0;
    for (let level = 1; level < this.levels.length; level++)
      n += this.levels[level].length + this.inFlight[level];
    this.metrics.pushRetryQueue.set(n);
  }

  /** Starts the due items of a level while it has room, and sets a timer for the next one not yet due. */
  private pump(level: number): void {
    if (this.closed) return;
    const queue = this.levels[level];
    while (this.inFlight[level] < (CONCURRENCY_PER_LEVEL[level] ?? 2) && queue.length > 0) {
      const wait = queue[0].when - this.now();
      if (wait > 0) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.pump(level);
        }, wait * 1000);
        timer.unref();
        this.timers.add(timer);
        return;
      }
      const { item } = queue.shift() as Pending;
      this.inFlight[level]++;
      void this.send(level, item).finally(() => {
        this.inFlight[level]--;
        this.countRetries();
        this.pump(level);
        this.checkIdle();
      });
    }
  }

  /** One try: 200 and 410 end the item (410 also forgets the token), anything else goes one level up. */
  private async send(level: number, item: QueueItem): Promise<void> {
    const outcome = await this.post(item);
    if (this.closed) return; // the file stays on disk and is retried after restart
    if (outcome === "200") {
      this.metrics.pushDeliveries.inc();
      await dropItem(item);
    } else if (outcome === "410") {
      await this.opts.tokens
        .remove(item.addr, item.token)
        .catch((err) => this.opts.log.error(`removing token: ${(err as Error).message}`));
      await dropItem(item);
    } else {
      this.metrics.pushFailures.inc();
      this.opts.log.warn(
        `Notification request failed: ${outcome} (${tokenLabel(item.token)}, try ${level + 1})`,
      );
      await this.queueForRetry(item, level + 1);
    }
  }

  /** POSTs the token to the notification server; the HTTP status, or "error <message>". */
  private async post(item: QueueItem): Promise<string> {
    const controller = new AbortController();
    this.controllers.add(controller);
    const timeout = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    const doFetch = this.fetchImpl;
    try {
      // The body is the raw token; the notification server (notifications.delta.chat) decrypts and routes it.
      const res = await doFetch(this.opts.notificationUrl, {
        method: "POST",
        body: item.token,
        signal: controller.signal,
      });
      await res.arrayBuffer().catch(() => {});
      return String(res.status);
    } catch (err) {
      return `error ${(err as Error).message}`;
    } finally {
      clearTimeout(timeout);
      this.controllers.delete(controller);
    }
  }

  private isIdle(): boolean {
    return this.inFlight.every((n) => n === 0) && this.levels.every((q) => q.length === 0);
  }

  private checkIdle(): void {
    if (this.isIdle()) this.wakeIdleWaiters();
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

async function dropItem(item: QueueItem): Promise<void> {
  await unlink(item.path).catch(() => {});
}
