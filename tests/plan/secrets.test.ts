// Hashes derived from a secret are secrets too. Every other value of chatmail.ini is known to whoever reads the
// stack, so a plain hash of it would let a short invite token be guessed offline; the same holds for a hash
// computed from such a hash (a service restarted by chatmail.ini). Two plans that differ only in the token
// must therefore differ only in steps flagged `secretHash`, and no script may carry a flagged hash.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { compileSteps, RUN_LOG, SECRET_HASH_WORD, sha256 } from "../../core/plan/steps";
import type { Step } from "../../core/plan/types";
import { contentFile, service, validation } from "../../core/plan/units";
import { planFor } from "./helpers";

// Equal length, so that nothing could differ by the token's length alone.
const TOKEN_A = "tokenAlpha1234";
const TOKEN_B = "tokenBravo5678";
const configs = {
  open: {},
  one: { invite_token: TOKEN_A, mtail_address: "127.0.0.1" },
  two: { invite_token: `${TOKEN_A} otherToken99`, tls_mode: "self-signed" },
};

const dir = mkdtempSync(join(tmpdir(), "plan-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The same config with TOKEN_B in place of TOKEN_A. */
const swapped = (ini: Record<string, string>) =>
  Object.fromEntries(Object.entries(ini).map(([k, v]) => [k, v.replace(TOKEN_A, TOKEN_B)]));

const byId = (steps: readonly Step[]) => new Map(steps.map((s) => [s.id, s]));

describe("steps whose hash depends on an invite token", () => {
  it.each(Object.entries(configs))(
    "are exactly the flagged ones, and only they differ between two tokens (%s)",
    (_, ini) => {
      const a = planFor(ini).steps;
      const b = byId(planFor(swapped(ini)).steps);
      expect([...b.keys()]).toEqual(a.map((s) => s.id));
      const differing: string[] = [];
      for (const sa of a) {
        const sb = b.get(sa.id)!;
        expect(sb.secretHash, sa.id).toBe(sa.secretHash);
        const differs = sa.script !== sb.script || sa.stdin !== sb.stdin || sa.hash !== sb.hash;
        if (differs) differing.push(sa.id);
        if (!sa.secretHash) {
          expect(sb.script, sa.id).toBe(sa.script);
          expect(sb.stdin, sa.id).toBe(sa.stdin);
          expect(sb.hash, sa.id).toBe(sa.hash);
        }
      }
      const flagged = a.filter((s) => s.secretHash).map((s) => s.id);
      expect(flagged).toEqual(expect.arrayContaining(differing));
      if ("invite_token" in ini) {
        expect(differing).toEqual(
          expect.arrayContaining([
            `file:${PATHS.chatmailIni}`,
            `file:${PATHS.invitesDir}/invite-1.txt`,
            `file:${PATHS.invitesDir}/invite-1.png`,
            "service:chatmaild.service",
          ]),
        );
      } else {
        expect(flagged).toEqual([]);
      }
    },
  );

  it.each(Object.entries(configs))("keep their hashes and the tokens out of every script (%s)", (_, ini) => {
    const steps = planFor(ini).steps;
    const secretHashes = steps.filter((s) => s.secretHash).map((s) => s.hash);
    for (const s of steps) {
      expect(s.script, s.id).not.toContain(TOKEN_A);
      for (const h of secretHashes) expect(s.script, s.id).not.toContain(h);
      // A step with secret content always has a secret hash.
      if (s.secret) expect(s.secretHash, s.id).toBe(true);
      if (s.secretHash) expect(s.script, s.id).toContain(` ${s.id} ${SECRET_HASH_WORD}" >>${RUN_LOG}`);
      else expect(s.script, s.id).toContain(` ${s.id} ${s.hash}" >>${RUN_LOG}`);
    }
  });

  it("include a service restarted by a secret file, whose content is not secret itself", () => {
    const plan = planFor(configs.one);
    const steps = byId(plan.steps);
    const secretFiles = new Set(plan.steps.filter((s) => s.secret).map((s) => s.id));
    const restartedBySecret = plan.units.filter(
      (u) => u.kind === "service" && [...u.restartOn, ...u.reloadOn].some((r) => secretFiles.has(r)),
    );
    expect(restartedBySecret.map((u) => u.id)).toContain("service:chatmaild.service");
    for (const u of restartedBySecret) {
      expect(steps.get(u.id)!.secretHash, u.id).toBe(true);
      // Its output is a service restart: logged as usual, only its hash is masked.
      expect(steps.get(u.id)!.secret, u.id).toBe(false);
    }
    // Services that do not depend on chatmail.ini keep a public hash.
    expect(steps.get("service:postfix.service")!.secretHash).toBe(false);
  });

  it("include a check of a secret file and whatever depends on a secret hash in turn", () => {
    const secretFile = contentFile("/etc/example/secret.conf", `token ${TOKEN_A}\n`, { secret: true });
    const check = validation("example-config", "example", "true", [secretFile]);
    const restarted = service("example.service", { restartOn: [secretFile.id] });
    const [file, checked, svc] = compileSteps([secretFile, check, restarted]);
    expect([file.secretHash, checked.secretHash, svc.secretHash]).toEqual([true, true, true]);
    expect([file.secret, checked.secret, svc.secret]).toEqual([true, false, false]);
    // The check names the file but no hash of its content.
    expect(checked.script).toContain("# checks /etc/example/secret.conf\n");
    for (const h of [sha256(secretFile.content), file.hash, checked.hash])
      expect(checked.script).not.toContain(h);
  });

  it("log `<time> <unit id> secret` on the server, and `<time> <unit id> <hash>` for the others", () => {
    const log = join(dir, "runs.log");
    const steps = byId(planFor(configs.one).steps);
    const ran = [steps.get("service:chatmaild.service")!, steps.get("service:postfix.service")!];
    for (const step of ran) {
      // Only the run-log prefix of the script: the rest would change this machine.
      const prefix = step.script.split("\n").slice(0, 3).join("\n");
      execFileSync("sh", ["-c", prefix.split(RUN_LOG).join(log).split("/var/lib/chatmail-deploy").join(dir)]);
    }
    const lines = readFileSync(log, "utf8").trimEnd().split("\n");
    expect(lines.map((l) => l.split(" "))).toEqual([
      [expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), "service:chatmaild.service", "secret"],
      [expect.stringMatching(/^\d{4}-\d\d-\d\dT/), "service:postfix.service", ran[1].hash],
    ]);
  });

  it("are flagged the same way every time: same config, same bytes", () => {
    expect(JSON.stringify(planFor(configs.one).steps)).toBe(JSON.stringify(planFor(configs.one).steps));
  });
});
