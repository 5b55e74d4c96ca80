// What an online test sees: the deployed server, its plan, clients' connection facts, and a way to redeploy.
import type { RelayConfig } from "../../../components/config";
import type { Plan } from "../../../components/plan";
import type { Container } from "../container";
import type { DeployResult } from "../deploy";
import type { HostSideServer } from "../hostside";
import type { Netns } from "../netns";
import type { Ssh } from "../ssh";

export type RawOption = string | number | boolean | string[];

export interface Deployed {
  readonly config: RelayConfig;
  readonly plan: Plan;
  readonly result: DeployResult;
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
  /** Plans the config (with these option overrides on top of the testbed's) and applies it like `pulumi up`. */
  deploy(overrides?: Readonly<Record<string, RawOption>>): Promise<Deployed>;
  /** The server's certificate chain (PEM), fetched after the deploy, for clients to verify against. */
  caCert(): Promise<string>;
  /** Records a duration for the timing report. */
  time(label: string, seconds: number): void;
}

export interface E2eTest {
  /** A sentence about behaviour, like "a second deploy with the same config runs no step". */
  readonly name: string;
  /** Unit ids the test relies on; while the plan lacks one, the test fails saying which. */
  readonly needs?: readonly string[];
  run(ctx: SuiteContext): Promise<void>;
}
