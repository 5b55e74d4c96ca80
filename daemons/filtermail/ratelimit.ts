// Per-sender send rate limit as a GCRA (generic cell rate algorithm), the way Rust filtermail configures the
// `governor` crate: maxUserSendBurstSize messages at once, then one every 60 s / maxUserSendPerMinute.
// Keys whose state has fully recovered are dropped, so the map does not grow with every sender ever seen
// (the Python limiter of chatmail/relay 1.7.0, chatmaild/src/chatmaild/filtermail.py, never dropped them;
// docs/decisions.md, 'Rate limit as GCRA').

// How often stale keys are swept; a sweep is a pass over the map, cheap at this interval.
const PRUNE_INTERVAL_MS = 60_000;

export class SendRateLimiter {
  /** Theoretical arrival time per sender, in ms. */
  private readonly tat = new Map<string, number>();
  private readonly emissionMs: number;
  private readonly toleranceMs: number;
  private lastPrune = 0;

  constructor(maxPerMinute: number, burst: number) {
    this.emissionMs = 60_000 / Math.max(1, maxPerMinute);
    this.toleranceMs = this.emissionMs * Math.max(1, burst);
  }

  /** Counts one message for `sender` if allowed. Senders are compared case-insensitively. */
  allow(sender: string, now: number = Date.now()): boolean {
    if (now - this.lastPrune >= PRUNE_INTERVAL_MS) this.prune(now);
    const key = sender.toLowerCase();
    const tat = this.tat.get(key) ?? now;
    if (now < tat - this.toleranceMs + this.emissionMs) return false;
    this.tat.set(key, Math.max(tat, now) + this.emissionMs);
    return true;
  }

  /** Number of senders with state; for tests and metrics. */
  get size(): number {
    return this.tat.size;
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [key, tat] of this.tat) if (tat <= now) this.tat.delete(key);
  }
}
