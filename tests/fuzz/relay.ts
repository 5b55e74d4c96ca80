// The system under fuzz: the bundled chatmaild (components/assets.ts, bundleDaemons) running the five socket
// services in one process, as on a relay, on a temp tree: chatmail.ini, the bundle, its log, the three dict
// sockets and vmail/<domain>/ as the mailboxes dir. Each filtermail direction hands accepted mail to its own
// recording SMTP sink in this process (the stand-in for Postfix's reinjection listeners). A daemon that dies
// is started again by ensureRunning(), and the death is kept for the property to report.
import { spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeDaemonBundle } from "../../components/assets";
import { freePort } from "../daemons/helpers";
import { closedPort, startSink, type Sink } from "../filtermail/harness";

export const DOMAIN = "chat.example.org";
const SERVICES = ["doveauth", "metadata", "lastlogin", "filtermail-outgoing", "filtermail-incoming"] as const;
const START_DEADLINE_MS = 30_000;

export interface Memory {
  /** Resident set now, KiB. */
  rssKiB: number;
  /** Highest resident set since the process started, KiB. */
  hwmKiB: number;
}

export class Relay {
  readonly mailboxesDir: string;
  readonly sockets: { doveauth: string; metadata: string; lastlogin: string };
  /** Deaths of the daemon process while nobody asked it to stop, with the end of its log. */
  readonly unexpectedExits: string[] = [];
  private child: ChildProcess | undefined;
  private stopping = false;

  private constructor(
    readonly root: string,
    private readonly bundle: string,
    private readonly ini: string,
    readonly ports: { outgoing: number; incoming: number },
    readonly sinks: { outgoing: Sink; incoming: Sink },
  ) {
    this.mailboxesDir = join(root, "vmail", DOMAIN);
    this.sockets = {
      doveauth: join(root, "doveauth.socket"),
      metadata: join(root, "metadata.socket"),
      lastlogin: join(root, "lastlogin.socket"),
    };
  }

  static async start(): Promise<Relay> {
    const root = mkdtempSync(join(tmpdir(), "chatmail-fuzz-"));
    mkdirSync(join(root, "vmail", DOMAIN), { recursive: true });
    const bundle = writeDaemonBundle(join(root, "chatmaild.js"));
    // Two sinks: the relay's config wants every loopback port distinct.
    const sinks = { outgoing: await startSink(), incoming: await startSink() };
    const ports = { outgoing: await freePort(), incoming: await freePort() };
    const params = {
      mail_domain: DOMAIN,
      mailboxes_dir: join(root, "vmail", DOMAIN),
      // Creation must not depend on this machine's load, memory or disk.
      max_load_1m: "99999",
      min_available_memory: "0",
      min_free_disk_space: "0",
      // Fuzz sessions send as the same few addresses many times a minute.
      max_user_send_per_minute: "1000000",
      max_user_send_burst_size: "1000000",
      filtermail_smtp_port: String(ports.outgoing),
      filtermail_smtp_port_incoming: String(ports.incoming),
      postfix_reinject_port: String(sinks.outgoing.port),
      postfix_reinject_port_incoming: String(sinks.incoming.port),
      new_account_port: String(await freePort()),
      // Push notifications for fuzzed tokens go nowhere rather than to notifications.delta.chat.
      notification_url: `http://127.0.0.1:${await closedPort()}/notify`,
    };
    const ini = join(root, "chatmail.ini");
    writeFileSync(
      ini,
      `[params]\n${Object.entries(params)
        .map(([k, v]) => `${k} = ${v}`)
        .join("\n")}\n`,
    );
    const relay = new Relay(root, bundle, ini, ports, sinks);
    try {
      await relay.spawn();
    } catch (err) {
      await relay.stop();
      throw err;
    }
    return relay;
  }

  get logPath(): string {
    return join(this.root, "chatmaild.log");
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the daemon again if it died (the death stays in unexpectedExits). */
  async ensureRunning(): Promise<void> {
    if (!this.alive()) await this.spawn();
  }

  memory(): Memory {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kib = (field: string): number =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rssKiB: kib("VmRSS"), hwmKiB: kib("VmHWM") };
  }

  logTail(bytes = 4000): string {
    const text = readFileSync(this.logPath, "utf8");
    return text.slice(-bytes);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child && this.alive()) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await this.sinks.outgoing.close();
    await this.sinks.incoming.close();
    rmSync(this.root, { recursive: true, force: true });
  }

  private async spawn(): Promise<void> {
    const logOffset = sizeOf(this.logPath);
    // The log goes to a file, not a pipe: a pipe this process is slow to read would block the daemon's writes.
    const log = openSync(this.logPath, "a");
    const child = spawn(
      process.execPath,
      [
        this.bundle,
        this.ini,
        ...SERVICES,
        "--doveauth-socket",
        this.sockets.doveauth,
        "--metadata-socket",
        this.sockets.metadata,
        "--lastlogin-socket",
        this.sockets.lastlogin,
        "--nocreate-file",
        join(this.root, "nocreate"),
        // The metrics listener on a free port, not the fixed 9103 of a relay.
        "--metrics-port",
        "0",
      ],
      // cwd is the temp root, so a relative path written by mistake shows up in the tree snapshot.
      { cwd: this.root, stdio: ["ignore", log, log] },
    );
    closeSync(log);
    this.child = child;
    // A test process that dies without afterAll must not leave chatmaild running.
    process.once("exit", () => child.kill("SIGKILL"));
    child.once("exit", (code, signal) => {
      if (!this.stopping)
        this.unexpectedExits.push(
          `chatmaild exited (code ${code}, signal ${signal}); log tail:\n${this.logTail()}`,
        );
    });
    const deadline = Date.now() + START_DEADLINE_MS;
    while (this.startedCount(logOffset) < SERVICES.length) {
      if (!this.alive() || Date.now() > deadline)
        throw new Error(`chatmaild did not start its services; log tail:\n${this.logTail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private startedCount(offset: number): number {
    const text = readFileSync(this.logPath).subarray(offset).toString("utf8");
    return SERVICES.filter((s) => text.includes(`${s} started`)).length;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
