// What an online test sees: the deployed server, its plan, clients' connection facts, and a way to redeploy.
import type { RelayConfig } from "../../../core/config";
import type { Plan } from "../../../core/plan";
import type { Container } from "../container";
import type { Stack, UpResult } from "../engine";
import type { HostSideServer } from "../hostside";
import type { Netns } from "../netns";
import type { Prometheus } from "../prometheus";
import type { Ssh } from "../ssh";

export type { RawOption } from "../config";
import type { RawOption } from "../config";

export interface Deployed {
  readonly config: RelayConfig;
  readonly plan: Plan;
  readonly result: UpResult;
}

export interface SuiteContext {
  /** The server's address inside the test's namespace; clients connect here and send SNI `domain`. */
  readonly addr: string;
  readonly domain: string;
  /** The configuration and plan of the first deploy. */
  readonly first: Deployed;
  readonly ssh: Ssh;
  readonly container: Container;
  readonly hostSide: HostSideServer;
  /** Whether the iroh-relay archive is a real build (tools/iroh/build.sh) rather than the testbed's stand-in. */
  readonly irohReal?: boolean;
  /** The test's namespace: clients that must resolve the relay's names run inside it (`ip netns exec`). */
  readonly netns: Netns;
  /** The plan for the testbed config with these option overrides, without deploying it. */
  planFor(overrides?: Readonly<Record<string, RawOption>>): Plan;
  /** Sets the stack's config to the testbed's with these option overrides and runs the real `pulumi up`. */
  deploy(overrides?: Readonly<Record<string, RawOption>>): Promise<Deployed>;
  /** The testbed relay's Pulumi stack (real engine, file backend, stand-in command plugin). */
  readonly stack: Stack;
  /** The testbed's options for the stack with these overrides (what `deploy` sets before `pulumi up`). */
  optionsFor(overrides?: Readonly<Record<string, RawOption>>): Record<string, RawOption>;
  /** The server as the stack reaches it. */
  readonly target: { readonly address: string; readonly keyPath: string };
  /** Everything the Pulumi CLI printed so far in this run. */
  transcript(): string;
  /** The server's certificate chain (PEM), fetched after the deploy, for clients to verify against. */
  caCert(): Promise<string>;
  /** Records a duration for the timing report. */
  time(label: string, seconds: number): void;
  /** The testbed's Prometheus, scraping the relay's metrics (`npm run test:e2e` starts one). */
  readonly prometheus?: Prometheus;
}

export interface E2eTest {
  /** A sentence about behaviour, like "a second deploy with the same config runs no step". */
  readonly name: string;
  /** Unit ids the test relies on; while the plan lacks one, the test fails saying which. */
  readonly needs?: readonly string[];
  run(ctx: SuiteContext): Promise<void>;
}
