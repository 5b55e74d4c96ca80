// A real Prometheus (Debian's package, run as a child process, never its packaged service) on the host end of the
// test's link, scraping the relay's metrics at <relay address>:9103 every second. It listens on the link's host
// address only, so nothing outside the test network reaches it; its data lives in the run directory. The suite's
// metrics group (suite/metrics.ts) asks its HTTP API what it saw.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { METRICS_PORT } from "../../core/server";
import { waitFor } from "./proc";

export const PROMETHEUS = "/usr/bin/prometheus";
/** The scrape job's name, the `job` label of its series. */
export const JOB = "chatmail";
/** Often enough that a test's window starts and ends on a scrape soon after it is asked for. */
export const SCRAPE_INTERVAL_MS = 1000;

/** One raw sample: Unix time in seconds (millisecond precision) and value. */
export type Sample = readonly [number, number];

export interface Prometheus {
  /** http://<host address>:<port> */
  readonly url: string;
  /** The scrape target, <relay address>:9103. */
  readonly target: string;
  /** An instant query at `time` (Unix seconds; default now): each series' labels and value. */
  query(expr: string, time?: number): Promise<Array<{ metric: Record<string, string>; value: number }>>;
  /** The raw samples of each series a range selector (`name{...}[5m]`) selects at `time`. */
  samples(expr: string, time?: number): Promise<Array<{ metric: Record<string, string>; values: Sample[] }>>;
  /** Waits for a successful scrape that started after this call and returns its time (Unix seconds). */
  freshScrape(): Promise<number>;
  stop(): Promise<void>;
}

/** A TCP port that was free on `host` a moment ago. */
function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

interface ApiAnswer<T> {
  status: string;
  error?: string;
  data: { resultType: string; result: T };
}

export async function startPrometheus(
  dir: string,
  listenHost: string,
  relayAddr: string,
): Promise<Prometheus> {
  if (!existsSync(PROMETHEUS))
    throw new Error(`${PROMETHEUS} is missing: install Debian's prometheus (see .ci/debian-packages)`);
  mkdirSync(join(dir, "data"), { recursive: true });
  const target = `${relayAddr.includes(":") ? `[${relayAddr}]` : relayAddr}:${METRICS_PORT}`;
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    [
      "global:",
      `  scrape_interval: ${SCRAPE_INTERVAL_MS}ms`,
      `  scrape_timeout: ${SCRAPE_INTERVAL_MS}ms`,
      "scrape_configs:",
      `  - job_name: ${JOB}`,
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const port = await freePortOn(listenHost);
  const url = `http://${listenHost}:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=${listenHost}:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (log.length < 20_000) log += d.toString("utf8");
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    writeFileSync(join(dir, "prometheus.log"), log);
  };

  async function api<T>(path: string, params: Record<string, string>): Promise<T> {
    const res = await fetch(`${url}${path}?${new URLSearchParams(params)}`);
    const answer = (await res.json()) as ApiAnswer<T>;
    if (answer.status !== "success") throw new Error(`prometheus ${path} ${params.query}: ${answer.error}`);
    return answer.data.result;
  }
  const at = (time?: number): Record<string, string> => (time === undefined ? {} : { time: String(time) });

  const prometheus: Prometheus = {
    url,
    target,
    async query(expr, time) {
      const result = await api<Array<{ metric: Record<string, string>; value: [number, string] }>>(
        "/api/v1/query",
        { query: expr, ...at(time) },
      );
      return result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async samples(expr, time) {
      const result = await api<Array<{ metric: Record<string, string>; values: Array<[number, string]> }>>(
        "/api/v1/query",
        { query: expr, ...at(time) },
      );
      return result.map((r) => ({
        metric: r.metric,
        values: r.values.map(([t, v]) => [t, Number(v)] as const),
      }));
    },
    async freshScrape() {
      const after = Date.now() / 1000;
      return waitFor(
        "a scrape of the relay after this moment",
        10_000,
        async () => {
          // timestamp() of the raw series: the scrape's time (of an expression, it would be the query's time).
          const [last] = await prometheus.query(`timestamp(up{job="${JOB}"})`);
          if (last === undefined || last.value < after) return undefined;
          const [up] = await prometheus.query(`up{job="${JOB}"}`, last.value);
          return up?.value === 1 ? last.value : undefined;
        },
        100,
      );
    },
    stop,
  };
  try {
    await waitFor(
      `prometheus ready at ${url}`,
      30_000,
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${log.slice(-2000)}`);
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      200,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return prometheus;
}
