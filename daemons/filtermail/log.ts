// The filter's log lines on stderr, written once per turn of the event loop: each message logs a line or two
// (docs/daemons.md, 'Log lines'), and under load many messages end in the same turn, so one write carries all of
// them instead of one write (and one wake-up of journald) per line. A line is never held past the turn it was
// logged in, nor past the process's exit.

// Lines are written at once when this much is waiting (a burst must not build a big string).
const MAX_PENDING_CHARS = 16 * 1024;

let pending = "";
let scheduled = false;
let exitHooked = false;

/** Writes the waiting lines now. */
export function flushLog(): void {
  scheduled = false;
  if (pending === "") return;
  const out = pending;
  pending = "";
  process.stderr.write(out);
}

/** Queues one line for stderr; it goes out at the end of this turn of the event loop. */
export function logLine(line: string): void {
  pending += `${line}\n`;
  if (pending.length >= MAX_PENDING_CHARS) {
    flushLog();
    return;
  }
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushLog);
  }
  if (!exitHooked) {
    exitHooked = true;
    // stderr writes are synchronous on Linux (pipes, journald's socket, files), so lines queued just before an
    // exit still get out.
    process.once("exit", flushLog);
  }
}
