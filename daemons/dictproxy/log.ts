// Logging for the daemons: one line per event on stderr (journald adds time and unit). Some lines are a contract
// with mtail (`Created address: `, `registration rejected: `), so callers pass the exact text. Never pass secrets.

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Only written when CHATMAIL_DEBUG is set; for per-request traces. */
  debug(msg: string): void;
  /** Whether debug() writes anything; hot paths check it before building a message. */
  readonly debugEnabled: boolean;
}

const DEBUG = Boolean(process.env.CHATMAIL_DEBUG);

/** A logger that prefixes every line with the daemon name, writing through `write` (stderr by default). */
export function createLogger(
  name: string,
  write: (line: string) => void = (l) => process.stderr.write(l),
): Logger {
  const emit = (level: string, msg: string): void => write(`${name}: ${level}${msg}\n`);
  return {
    info: (msg) => emit("", msg),
    warn: (msg) => emit("WARNING ", msg),
    error: (msg) => emit("ERROR ", msg),
    debug: (msg) => {
      if (DEBUG) emit("DEBUG ", msg);
    },
    debugEnabled: DEBUG,
  };
}

/** A logger that keeps lines in memory; tests assert on what a daemon logged. */
export function memoryLogger(name = "test"): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(
    createLogger(name, (l) => lines.push(l.trimEnd())),
    { lines },
  );
}
