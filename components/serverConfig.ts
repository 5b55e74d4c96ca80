// ServerConfig: one remote command per plan step. A step's command runs when its hash (or the server) changes
// and never otherwise, so an unchanged `pulumi up` runs nothing on the server. What is derived from a secret
// stays a secret in the state: the content of a secret step, its output, and every hash computed from secret
// content (Step.secretHash), which would otherwise let a short invite token be guessed offline.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { Plan } from "../core/plan";
import type { Host } from "./host";

export interface ServerConfigArgs {
  readonly plan: Plan;
  readonly host: Host;
}

export class ServerConfig extends pulumi.ComponentResource {
  /** The remote command of each step, by step id. */
  readonly commands: ReadonlyMap<string, command.remote.Command>;

  constructor(name: string, args: ServerConfigArgs, opts?: pulumi.ComponentResourceOptions) {
    super("chatmail:server:ServerConfig", name, {}, opts);
    const commands = new Map<string, command.remote.Command>();
    for (const step of args.plan.steps) {
      const secret = <T>(v: T) => (step.secret ? pulumi.secret(v) : v);
      const hash = step.secretHash ? pulumi.secret(step.hash) : step.hash;
      commands.set(
        step.id,
        new command.remote.Command(
          `${name}-${step.id}`,
          {
            connection: args.host.connection,
            create: step.script,
            // File contents travel on stdin, never in the command line; secret contents stay masked.
            stdin: step.stdin === "" ? undefined : secret(step.stdin),
            // The hash replaces the command (runs create again) exactly when the unit changed; the server id
            // does so when the machine was replaced and must be configured from scratch.
            triggers: [hash, args.host.serverId],
            logging: step.secret ? "none" : "stdoutAndStderr",
            // Without this the provider sends the previous output as environment on every run (pulumi-command#48).
            addPreviousOutputInEnv: false,
          },
          {
            parent: this,
            dependsOn: step.dependsOn.map((id) => commands.get(id)!),
            ...(args.host.server ? { deletedWith: args.host.server } : {}),
            additionalSecretOutputs: step.secret ? ["stdout", "stderr"] : [],
          },
        ),
      );
    }
    this.commands = commands;
    this.registerOutputs({});
  }
}
