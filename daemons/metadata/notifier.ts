// Push notifications for new messages (relay-daemons.md §7.5). Each (address, device token) becomes a queue file
// in <mailboxesDir>/pending_notifications before anything is sent, so a restart loses nothing; the file goes once
// the notification server answers 200, or 410 (token gone: it is also removed from the account). Other answers and
// network errors retry after 0, 8, 64, 512 and 4096 s; an item older than 5 h or out of tries is dropped.
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../dictproxy/log";
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
}

export interface Notifier {
  /** Queues one notification per valid token of `addr`. */
  newMessage(addr: string): Promise<void>;
  /** Re-reads the queue directory (startup): spurious files removed, valid items tried again. */
  requeue(): Promise<void>;
  /** Resolves when no request is in flight and nothing is due (tests). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  when: number;
  item: QueueItem;
}

export function createNotifier(opts: NotifierOptions): Notifier {
  const { log, tokens } = opts;
  const delays = opts.retryDelaysS ?? RETRY_DELAYS_S;
  const now = opts.now ?? (() => Date.now() / 1000);
  const doFetch = opts.fetchImpl ?? fetch;
  const levels: Pending[][] = delays.map(() => []);
  const inFlight = delays.map(() => 0);
  const timers = new Set<NodeJS.Timeout>();
  const controllers = new Set<AbortController>();
  let idleWaiters: Array<() => void> = [];
  let closed = false;

  const drop = async (item: QueueItem): Promise<void> => {
    await unlink(item.path).catch(() => {});
  };

  const isIdle = (): boolean => inFlight.every((n) => n === 0) && levels.every((q) => q.length === 0);
  const checkIdle = (): void => {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const queueForRetry = async (item: QueueItem, level: number): Promise<void> => {
    const when = now() + (delays[level] ?? Infinity);
    if (level >= delays.length || when > item.startTs + DROP_DEADLINE_S) {
      await drop(item);
      log.error(`notification exceeded deadline: ${tokenLabel(item.token)} for ${item.addr}`);
      checkIdle();
      return;
    }
    const queue = levels[level];
    queue.push({ when, item });
    queue.sort((a, b) => a.when - b.when || a.item.startTs - b.item.startTs);
    pump(level);
  };

  const send = async (level: number, item: QueueItem): Promise<void> => {
    const controller = new AbortController();
    controllers.add(controller);
    const timeout = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let outcome: string;
    try {
      // The body is the raw token; the notification server (notifications.delta.chat) decrypts and routes it.
      const res = await doFetch(opts.notificationUrl, {
        method: "POST",
        body: item.token,
        signal: controller.signal,
      });
      await res.arrayBuffer().catch(() => {});
      outcome = String(res.status);
    } catch (err) {
      outcome = `error ${(err as Error).message}`;
    } finally {
      clearTimeout(timeout);
      controllers.delete(controller);
    }
    if (closed) return; // the file stays on disk and is retried after restart
    if (outcome === "200") await drop(item);
    else if (outcome === "410") {
      await tokens
        .remove(item.addr, item.token)
        .catch((err) => log.error(`removing token: ${(err as Error).message}`));
      await drop(item);
    } else {
      log.warn(`Notification request failed: ${outcome} (${tokenLabel(item.token)}, try ${level + 1})`);
      await queueForRetry(item, level + 1);
    }
  };

  function pump(level: number): void {
    if (closed) return;
    const queue = levels[level];
    while (inFlight[level] < (CONCURRENCY_PER_LEVEL[level] ?? 2) && queue.length > 0) {
      const wait = queue[0].when - now();
      if (wait > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          pump(level);
        }, wait * 1000);
        timer.unref();
        timers.add(timer);
        return;
      }
      const { item } = queue.shift() as Pending;
      inFlight[level]++;
      void send(level, item).finally(() => {
        inFlight[level]--;
        pump(level);
        checkIdle();
      });
    }
  }

  return {
    async newMessage(addr) {
      const startTs = Math.trunc(now());
      await mkdir(opts.queueDir, { recursive: true });
      for (const token of await tokens.get(addr)) {
        await queueForRetry(await createQueueItem(opts.queueDir, addr, startTs, token), 0);
      }
    },
    async requeue() {
      await mkdir(opts.queueDir, { recursive: true });
      for (const name of (await readdir(opts.queueDir)).sort()) {
        const path = join(opts.queueDir, name);
        const item = name.endsWith(".tmp") ? undefined : await readQueueItem(path).catch(() => undefined);
        if (!item) {
          log.warn(`removing spurious queue item: ${path}`);
          await unlink(path).catch(() => {});
          continue;
        }
        // The deadline keeps counting from the first attempt.
        await queueForRetry(item, 0);
      }
    },
    idle() {
      return isIdle() ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const c of controllers) c.abort();
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    },
  };
}
