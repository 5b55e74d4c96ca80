// A point in time by which a peer must have done something, with one timer behind it. Unlike an idle timer
// (socket.setTimeout), which restarts on every byte, a deadline only moves when the protocol says so, so a peer
// that trickles one byte at a time cannot hold a session open. Moving it later costs no timer operation: when
// the timer fires early it re-arms itself for the rest, so a busy session arms about one timer per period
// instead of one per command or chunk.

export class Deadline {
  private at = Infinity;
  private firesAt = Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly expired: () => void) {}

  /** The deadline is `ms` from now, replacing any earlier one. */
  start(ms: number): void {
    this.at = Date.now() + ms;
    if (this.firesAt > this.at) this.arm();
  }

  /** Moves the running deadline `ms` later. */
  extend(ms: number): void {
    this.at += ms;
  }

  /** No deadline until the next start(); a pending timer then finds nothing to do. */
  stop(): void {
    this.at = Infinity;
  }

  /** Stops for good and releases the timer. */
  dispose(): void {
    this.stop();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.firesAt = this.at;
    this.timer = setTimeout(this.check, Math.max(0, this.at - Date.now()));
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    this.firesAt = Infinity;
    if (this.at === Infinity) return;
    if (Date.now() >= this.at) this.expired();
    else this.arm();
  };
}
