// Refuse new addresses while the server lacks headroom (chatmail/relay 1.12.0,
// chatmaild/src/chatmaild/syslimits.py; docs/daemons.md, 'Account creation at first login'): 1-minute load
// above maxLoad1m, MemAvailable below minAvailableMemory, free disk under mailboxesDir below minFreeDiskSpace.
// Existing accounts keep logging in; only creation is refused. A value that cannot be read skips its check.
import { loadavg } from "node:os";
import { readFile, statfs } from "node:fs/promises";
import { parseSizeMb, type DaemonConfig } from "../config";
import type { Logger } from "../dictproxy/log";

export type LimitsConfig = Pick<
  DaemonConfig,
  "maxLoad1m" | "minAvailableMemory" | "minFreeDiskSpace" | "mailboxesDir"
>;

const MIB = 1024 * 1024;

async function memAvailableMb(): Promise<number> {
  // MemAvailable, not os.freemem() (MemFree): page cache that can be dropped counts as available.
  const match = /^MemAvailable:\s+(\d+) kB$/m.exec(await readFile("/proc/meminfo", "utf8"));
  if (!match) throw new Error("no MemAvailable in /proc/meminfo");
  return Math.floor((Number(match[1]) * 1024) / MIB);
}

async function freeDiskMb(dir: string): Promise<number> {
  const s = await statfs(dir);
  return Math.floor((s.bavail * s.bsize) / MIB);
}

async function readOrSkip(
  what: string,
  read: () => Promise<number>,
  log: Logger,
): Promise<number | undefined> {
  try {
    return await read();
  } catch (err) {
    log.warn(`ignoring unreadable system limit: ${what}: ${(err as Error).message}`);
    return undefined;
  }
}

/** Why creation must wait, as the text after "registration rejected: ", or undefined when there is room. */
export async function resourceShortage(config: LimitsConfig, log: Logger): Promise<string | undefined> {
  return (await resourceCheck(config, log))?.message;
}

export interface Shortage {
  /** What is short, the metrics' refusal reason. */
  readonly reason: "load" | "memory" | "disk";
  /** The text after "registration rejected: ". */
  readonly message: string;
}

/** What the server is short of for a new account, or undefined when there is room. */
export async function resourceCheck(config: LimitsConfig, log: Logger): Promise<Shortage | undefined> {
  const load = loadavg()[0];
  if (load > config.maxLoad1m)
    return { reason: "load", message: `load avg ${load.toFixed(2)} > ${config.maxLoad1m.toFixed(2)}` };
  const minMem = parseSizeMb(config.minAvailableMemory);
  const mem = await readOrSkip("available memory", memAvailableMb, log);
  if (mem !== undefined && mem < minMem)
    return { reason: "memory", message: `available memory ${mem}MB < ${minMem}MB` };
  const minDisk = parseSizeMb(config.minFreeDiskSpace);
  const disk = await readOrSkip("free disk", () => freeDiskMb(config.mailboxesDir), log);
  if (disk !== undefined && disk < minDisk)
    return { reason: "disk", message: `free disk ${disk}MB < ${minDisk}MB` };
  return undefined;
}
