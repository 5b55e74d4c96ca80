// The relay configuration the testbed deploys: chat.example.org with a self-signed certificate. Everything the
// relay fetches or posts to (the iroh-relay archive, push notifications) is served by the test from the host
// side of its own network link, the only address the container can reach.
import { loadConfig, type RelayConfig } from "../../core/config";

/** An option value as a stack file holds it. */
export type RawOption = string | number | boolean | string[];

export const TEST_DOMAIN = "chat.example.org";

export interface HostSide {
  /** Base URL of the test's HTTP server on the host end of the veth pair, like http://10.231.7.1:8123. */
  readonly baseUrl: string;
  /** sha256 of the iroh-relay binary inside the archive served at baseUrl/iroh-relay.tar.gz. */
  readonly irohSha256: string;
  /** The relay's address on the test's link: chatmaild serves its metrics there, for the testbed's Prometheus. */
  readonly relayAddress?: string;
}

export const IROH_ARCHIVE_PATH = "/iroh-relay.tar.gz";
export const NOTIFY_PATH = "/notify";

/** The testbed relay's options as a stack sets them (raw values, before checking). */
export function testbedOptions(
  host: HostSide,
  overrides: Readonly<Record<string, RawOption>> = {},
): Record<string, RawOption> {
  return {
    mailDomain: TEST_DOMAIN,
    tlsMode: "self-signed",
    irohRelayDownloadUrl: host.baseUrl + IROH_ARCHIVE_PATH,
    irohRelaySha256: host.irohSha256,
    notificationUrl: host.baseUrl + NOTIFY_PATH,
    // The container sees the load average of the whole (shared, busy) test machine; the default of 5 would make
    // doveauth refuse new accounts whenever other jobs run.
    maxLoad1m: 1000,
    // Every test client logs in from the host's one address; the default of 10 first logins a minute per client
    // would refuse the suite's accounts. The limit itself is tested against a real Dovecot (tests/daemons).
    accountCreationsPerMinutePerClient: 1000,
    // The metrics on the test link rather than loopback, where the testbed's Prometheus scrapes them
    // (tests/e2e/prometheus.ts); the suite's metrics group also deploys the default, 127.0.0.1.
    ...(host.relayAddress ? { metricsAddress: host.relayAddress } : {}),
    ...overrides,
  };
}

export function testbedConfig(
  host: HostSide,
  overrides: Readonly<Record<string, RawOption>> = {},
): RelayConfig {
  return loadConfig(testbedOptions(host, overrides));
}
