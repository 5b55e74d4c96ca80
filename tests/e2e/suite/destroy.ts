// `pulumi destroy` on the testbed relay, last of all: the remote commands have no delete step, so destroy only
// forgets the relay in the stack's state; the server keeps running as configured. The program says so at
// every preview.
import { destroyNotice } from "../../../components/relay";
import { runLog, runningServices } from "./server";
import type { E2eTest } from "./types";

export const destroy: E2eTest[] = [
  {
    name: "pulumi destroy empties the stack, runs nothing on the server, and the relay keeps serving",
    async run(ctx) {
      // The stack's own config: the testbed relay is an existing host without a DNS provider.
      const notice = destroyNotice({
        ...ctx.first.config,
        hostProvider: "existing",
        hostAddress: ctx.target.address,
        dnsProvider: "none",
      });
      if (!ctx.transcript().includes(notice))
        throw new Error(`pulumi preview did not say what destroy leaves ("${notice}")`);
      const logBefore = await runLog(ctx);
      await ctx.stack.destroy();
      const appended = (await runLog(ctx)).slice(logBefore.length);
      if (appended.length > 0) throw new Error(`destroy ran on the server:\n${appended.join("\n")}`);
      const state = JSON.parse(await ctx.stack.exportState()) as { deployment?: { resources?: unknown[] } };
      const left = state.deployment?.resources ?? [];
      if (left.length > 0) throw new Error(`the stack still holds ${left.length} resources after destroy`);
      const services = runningServices(ctx.first.plan);
      const states = await ctx.ssh.out(`systemctl is-active ${services.join(" ")} || true`);
      const inactive = services.filter((_, i) => states.split("\n")[i] !== "active");
      if (inactive.length > 0) throw new Error(`after destroy, not active: ${inactive.join(", ")}`);
    },
  },
];
