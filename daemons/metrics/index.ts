// chatmaild's Prometheus endpoint: GET /metrics on metricsAddress:9103 (docs/metrics.md), started by
// daemons/main.ts next to the services when metricsAddress is set. It serves the counters the daemons move in
// this process and the gauges read from the server (system.ts); nothing here is per address or per client.
import { METRICS_FACTS, METRICS_PORT } from "../../core/server";
import type { DaemonConfig } from "../config";
import { createLogger, type Logger } from "../dictproxy/log";
import { startHttpServer, type HttpRequest, type HttpResponse } from "../http/server";
import type { Service } from "../service";
import { CONTENT_TYPE } from "./registry";
import { METRICS, type RelayMetrics } from "./relay";
import { addSystemMetrics, readFacts, type MetricsFacts, type SystemOptions } from "./system";

export type MetricsConfig = Pick<
  DaemonConfig,
  "metricsAddress" | "mailboxesDir" | "minFreeDiskSpace" | "minAvailableMemory"
>;

export interface MetricsOptions extends Partial<Omit<SystemOptions, "facts" | "log">> {
  /** Overrides metricsAddress (tests). */
  host?: string;
  /** Overrides the fixed port (0 picks a free one; see `port` on the result). */
  port?: number;
  /** The metrics to serve (default: the process's own). */
  metrics?: RelayMetrics;
  /** The plan's facts; read from factsPath (default METRICS_FACTS) when not given. */
  facts?: MetricsFacts;
  factsPath?: string;
  log?: Logger;
}

export interface MetricsService extends Service {
  readonly port: number;
}

export const METRICS_PATH = "/metrics";

export async function startMetrics(
  config: MetricsConfig,
  opts: MetricsOptions = {},
): Promise<MetricsService> {
  const log = opts.log ?? createLogger("metrics");
  const metrics = opts.metrics ?? METRICS;
  const facts = opts.facts ?? (await readFacts(opts.factsPath ?? METRICS_FACTS, log));
  addSystemMetrics(metrics.registry, config, { ...opts, facts, log });
  const handle = async (req: HttpRequest): Promise<HttpResponse> => {
    if (req.path !== METRICS_PATH)
      return { status: 404, headers: { "Content-Type": "text/plain" }, body: `see ${METRICS_PATH}\n` };
    if (req.method !== "GET" && req.method !== "HEAD")
      return { status: 405, headers: { Allow: "GET, HEAD" } };
    try {
      // HEAD gets the same headers and Content-Length; the server leaves the body out.
      const text = await metrics.registry.render();
      return {
        status: 200,
        headers: { "Content-Type": CONTENT_TYPE, "Cache-Control": "no-store" },
        body: text,
      };
    } catch (err) {
      log.error(`rendering metrics: ${(err as Error).message}`);
      return { status: 500 };
    }
  };
  const host = opts.host ?? config.metricsAddress;
  const server = await startHttpServer({
    name: "metrics",
    host,
    port: opts.port ?? METRICS_PORT,
    log,
    handle,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 60_000,
  });
  const port = server.port;
  log.info(`serving ${METRICS_PATH} on ${host.includes(":") ? `[${host}]` : host}:${port}`);
  return { port, close: () => server.close() };
}
