// The relay under systemd: every service the plan starts is active, and a daemon that dies is brought back.
import { waitFor } from "../proc";
import { mainPid, runningServices } from "./server";
import type { E2eTest } from "./types";
import { exposureScore, ownServiceUnits, unitSecurityCeilings } from "./unitSecurity";

// Dovecot's unit waits 30 s before restarting (RestartSec in the plan's override); the rest restart within 5 s.
const RESTART_DEADLINE_MS = 90_000;

export const active: E2eTest[] = [
  {
    name: "every service the plan starts is active under systemd",
    async run(ctx) {
      const names = runningServices(ctx.first.plan);
      if (names.length === 0) throw new Error("the plan starts no service");
      const states = await ctx.ssh.out(
        names.map((n) => `echo "${n} $(systemctl is-active ${n})"`).join("\n"),
      );
      const inactive = states.split("\n").filter((l) => !l.endsWith(" active"));
      if (inactive.length > 0) throw new Error(`not active: ${inactive.join("; ")}`);
    },
  },
  {
    name: "every service unit the plan writes scores at most its committed systemd-analyze security ceiling",
    async run(ctx) {
      const ceilings = unitSecurityCeilings();
      const units = ownServiceUnits(ctx.first.plan);
      const unknown = units.filter((u) => ceilings[u] === undefined);
      if (unknown.length > 0) throw new Error(`no ceiling in unit-security.json for ${unknown.join(", ")}`);
      const over: string[] = [];
      for (const unit of units) {
        const output = await ctx.ssh.out(`systemd-analyze security --no-pager ${unit} | tail -n 1`);
        const score = exposureScore(output, unit);
        if (score > ceilings[unit]) over.push(`${unit} ${score} > ${ceilings[unit]}`);
      }
      if (over.length > 0) throw new Error(`exposure above the ceiling: ${over.join("; ")}`);
    },
  },
];

export const hostState: E2eTest[] = [
  {
    name: "the server carries the deployed version stamp and the TZ setting in its environment",
    async run(ctx) {
      const planned = ctx.first.plan.units.find(
        (u) => u.kind === "file" && u.path === "/etc/chatmail-version",
      );
      if (!planned || planned.kind !== "file") throw new Error("the plan writes no /etc/chatmail-version");
      const stamp = await ctx.ssh.out("cat /etc/chatmail-version");
      const expected = String(planned.content).trimEnd();
      if (stamp !== expected)
        throw new Error(
          `/etc/chatmail-version is ${JSON.stringify(stamp)}, expected ${JSON.stringify(expected)}`,
        );
      const env = await ctx.ssh.out("grep -x 'TZ=:/etc/localtime' /etc/environment || true");
      if (env !== "TZ=:/etc/localtime") throw new Error("/etc/environment lacks TZ=:/etc/localtime");
    },
  },
];

export const restart: E2eTest[] = [
  {
    name: "killing a daemon's main process gets it restarted by systemd",
    async run(ctx) {
      // Timers have no process to kill; what they start is checked by its own tests.
      const names = runningServices(ctx.first.plan).filter((n) => n.endsWith(".service"));
      const policies = await ctx.ssh.out(
        names.map((n) => `echo "${n} $(systemctl show -p Restart --value ${n})"`).join("\n"),
      );
      // Services that declare a restart policy; oneshot wrappers like postfix.service have none to test.
      const restartable = policies
        .split("\n")
        .map((l) => l.split(" "))
        .filter(([, policy]) => policy !== "no" && policy !== "on-success")
        .map(([name]) => name);
      if (restartable.length === 0)
        throw new Error(`no service of the plan has a Restart= policy (${policies.replace(/\n/g, ", ")})`);
      // All at once: each service waits out its own RestartSec, so one by one would add those up.
      const before = new Map<string, number>();
      for (const name of restartable) {
        const pid = await mainPid(ctx, name);
        if (pid === 0) throw new Error(`${name} has no main process`);
        before.set(name, pid);
      }
      await ctx.ssh.exec(`kill -KILL ${[...before.values()].join(" ")}`);
      for (const [name, old] of before) {
        await waitFor(
          `${name} running again with a new main process`,
          RESTART_DEADLINE_MS,
          async () => {
            const active = (
              await ctx.ssh.exec(`systemctl is-active ${name}`, { allowFail: true })
            ).stdout.trim();
            const pid = await mainPid(ctx, name);
            return active === "active" && pid !== 0 && pid !== old ? true : undefined;
          },
          500,
        );
      }
    },
  },
];
