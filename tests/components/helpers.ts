// Mock-runtime helpers: record what the engine receives for every resource (inputs and options), so tests
// assert on inputs, never on outputs the mock merely echoes back.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { PROJECT_NAME } from "../../core/config/pulumiYaml";
import { runOnServer } from "../host/server";

export interface Recorded {
  type: string;
  name: string;
  inputs: any;
  urn?: string;
  parent?: string;
  dependencies: string[];
  protect?: boolean;
  ignoreChanges?: string[];
  additionalSecretOutputs?: string[];
  deletedWith?: string;
}

export const created: Recorded[] = [];
export const invokes: { token: string; inputs: any }[] = [];

const registerResource = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (req: any, cb: any) {
  const name = req.getName();
  const type = req.getType();
  return registerResource.call(this, req, (err: any, resp: any) => {
    const r = created.find((c) => c.name === name && c.type === type);
    if (r) {
      Object.assign(r, {
        urn: resp?.getUrn(),
        parent: req.getParent(),
        dependencies: req.getDependenciesList(),
        protect: req.getProtect(),
        ignoreChanges: req.getIgnorechangesList(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
        deletedWith: req.getDeletedwith(),
      });
    }
    cb(err, resp);
  });
};

export const SERVER_ID = "4242";

/**
 * What `ip -o addr show scope global` prints on the mock's existing server (as on a cloud server with Docker):
 * one public address of each family, and a private bridge. The address read-back is the real script, run by
 * sh against this output, so its stdout is what the component parses after a real `pulumi up`.
 */
export const SERVER_IP_ADDR = [
  "2: eth0    inet 203.0.113.10/32 metric 100 scope global dynamic eth0\\       valid_lft 85950sec preferred_lft 85950sec",
  "2: eth0    inet6 2001:db8:7::10/64 scope global \\       valid_lft forever preferred_lft forever",
  "3: docker0    inet 172.17.0.1/16 brd 172.17.255.255 scope global docker0\\       valid_lft forever preferred_lft forever",
].join("\n");

export const mocks: pulumi.runtime.Mocks = {
  newResource(args) {
    created.push({ type: args.type, name: args.name, inputs: args.inputs, dependencies: [] });
    const state: Record<string, unknown> = { ...args.inputs };
    switch (args.type) {
      case "hcloud:index/server:Server":
        return {
          id: SERVER_ID,
          state: { ...state, ipv4Address: "203.0.113.10", ipv6Address: "2001:db8::1" },
        };
      case "hcloud:index/primaryIp:PrimaryIp":
        return {
          id: args.inputs.type === "ipv4" ? "11" : "12",
          state: { ...state, ipAddress: args.inputs.type === "ipv4" ? "203.0.113.10" : "2001:db8::/64" },
        };
      case "command:remote:Command":
        return {
          id: `${args.name}-id`,
          state: {
            ...state,
            stdout: args.name.endsWith("read-dkim-public-key")
              ? "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A" + "k".repeat(360)
              : args.name.endsWith("read-addresses")
                ? runOnServer(args.inputs.create, SERVER_IP_ADDR)
                : "",
            stderr: "",
          },
        };
    }
    return { id: `${args.name}-id`, state };
  },
  call(args) {
    invokes.push({ token: args.token, inputs: args.inputs });
    if (args.token === "cloudflare:index/getZone:getZone")
      return { id: "zone123", zoneId: "zone123", name: "example.org" };
    throw new Error(`mock not implemented: ${args.token}`);
  },
};

export const isSecretInput = (v: any) =>
  v !== null && typeof v === "object" && v[specialSigKey] === specialSecretSig;

/** Every string in a recorded input that is not inside a secret envelope: what the engine would store in clear. */
export function clearText(v: any): string[] {
  if (typeof v === "string") return [v];
  if (isSecretInput(v)) return [];
  if (Array.isArray(v)) return v.flatMap(clearText);
  if (v && typeof v === "object") return Object.values(v).flatMap(clearText);
  return [];
}

/**
 * Runs the stack program itself (index.ts) under the mock runtime, with these settings handed over as
 * `pulumi up` hands over the stack file: every value as text, the names in `secret` as encrypted values.
 * Call after setMocks; returns the stack outputs.
 */
export async function runProgram(settings: Record<string, string>, secret: readonly string[]) {
  const key = (name: string) => `${PROJECT_NAME}:${name}`;
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(settings).map(([name, value]) => [key(name), value])),
    secret.map(key),
  );
  return await import("../../index");
}

/** Strips secret envelopes, for asserting on the plain value. */
export function plain(v: any): any {
  if (isSecretInput(v)) return plain(v.value);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object" && v.constructor === Object) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

export const byType = (type: string) => created.filter((c) => c.type === type);
export function findCreated(type: string, name: string): Recorded {
  const r = created.find((c) => c.type === type && c.name === name);
  if (!r)
    throw new Error(
      `no ${type} named ${name}; have ${byType(type)
        .map((c) => c.name)
        .join(", ")}`,
    );
  return r;
}

export const valueOf = <T>(o: pulumi.Input<T>) =>
  new Promise<T>((resolve) => pulumi.output(o).apply((v) => (resolve(v as T), v)));

/** The same assets as the plan tests: real templates and web sources, a stand-in daemon bundle. */
export { testAssets } from "../plan/helpers";
