// chatmaild's Prometheus endpoint: GET /metrics on metricsAddress:9103 (docs/metrics.md), started by
// daemons/main.ts next to the services when metricsAddress is set. It serves the counters the daemons move in
// this process and the gauges read from the server (system.ts); nothing here is per address or per client.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { METRICS_FACTS, METRICS_PORT } from "../../core/server";
import type { DaemonConfig } from "../config";
import { createLogger, type Logger } from "../dictproxy/log";
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
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    const path = (req.url ?? "/").split("?")[0];
    if (path !== METRICS_PATH) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end(`see ${METRICS_PATH}\n`);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    metrics.registry.render().then(
      (text) => {
        res.writeHead(200, { "Content-Type": CONTENT_TYPE, "Cache-Control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err: Error) => {
        log.error(`rendering metrics: ${err.message}`);
        res.writeHead(500).end();
      },
    );
  };
  const server = createServer(handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  const host = opts.host ?? config.metricsAddress;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? METRICS_PORT, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  log.info(`serving ${METRICS_PATH} on ${host.includes(":") ? `[${host}]` : host}:${port}`);
  return {
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
