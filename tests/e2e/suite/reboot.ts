// A reboot of the server: the relay comes back by itself, and accounts, the DKIM key and the certificate are
// the ones from before (nothing the deploy made is regenerated at boot).
import { PATHS, tlsPaths } from "../../../core/plan/facts";
import { imapLogin, newCredentials } from "./clients";
import { runningServices } from "./server";
import type { E2eTest, SuiteContext } from "./types";

async function fingerprints(ctx: SuiteContext): Promise<string> {
  const files = [PATHS.dkimPrivateKey, tlsPaths(ctx.first.config).cert, tlsPaths(ctx.first.config).key];
  return ctx.ssh.out(`sha256sum ${files.join(" ")}`);
}

export const reboot: E2eTest[] = [
  {
    name: "after a reboot every service is active and accounts, DKIM key and certificate are unchanged",
    needs: ["service:dovecot.service", "service:chatmaild.service", "service:opendkim.service"],
    async run(ctx) {
      const account = newCredentials(ctx);
      await (await imapLogin(ctx, account)).logout();
      const before = await fingerprints(ctx);
      await ctx.ssh.close();
      const t = Date.now();
      await ctx.container.reboot();
      ctx.time("reboot", (Date.now() - t) / 1000);
      const names = runningServices(ctx.first.plan);
      const states = await ctx.ssh.out(
        names.map((n) => `echo "${n} $(systemctl is-active ${n})"`).join("\n"),
      );
      const inactive = states.split("\n").filter((l) => !l.endsWith(" active"));
      if (inactive.length > 0) throw new Error(`not active after the reboot: ${inactive.join("; ")}`);
      const after = await fingerprints(ctx);
      if (after !== before)
        throw new Error(`key or certificate changed across the reboot:\n${before}\n->\n${after}`);
      // The same password still opens the account: its password file survived and was not recreated.
      await (await imapLogin(ctx, account)).logout();
    },
  },
];
