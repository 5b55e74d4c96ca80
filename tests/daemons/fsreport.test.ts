import { mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  buildReport,
  humanSize,
  legacyMetricsText,
  prometheusText,
  summaryText,
  writePublic,
} from "../../daemons/fsreport";
import { DOMAIN, tempRelay, type TempRelay } from "./helpers";

const NOW = 1_800_000_000;
const relays: TempRelay[] = [];
afterEach(() => {
  for (const r of relays.splice(0)) r.cleanup();
});

function setup() {
  const r = tempRelay();
  relays.push(r);
  const box = (name: string, loginAgeDays: number | undefined, messages: Array<[string, number]> = []) => {
    const dir = join(r.config.mailboxesDir, name);
    mkdirSync(dir, { recursive: true });
    if (loginAgeDays !== undefined) {
      writeFileSync(join(dir, "password"), "x");
      const t = NOW - loginAgeDays * 86400;
      utimesSync(join(dir, "password"), t, t);
    }
    for (const [path, size] of messages) {
      mkdirSync(join(dir, path, ".."), { recursive: true });
      writeFileSync(join(dir, path), Buffer.alloc(size));
    }
  };
  box(`ci-asllkj@${DOMAIN}`, 0);
  box(`ac_12l3kj@${DOMAIN}`, 0);
  box(`ci-l1k2j31@${DOMAIN}`, 0);
  box(`qweqwe123@${DOMAIN}`, 5, [
    ["cur/m1", 500],
    ["new/m2", 600],
  ]);
  box(`nomailbox@${DOMAIN}`, undefined);
  return r;
}

describe("buildReport", () => {
  it("counts accounts, CI accounts, recent logins and message sizes", async () => {
    const r = setup();
    const report = await buildReport(r.config, { now: NOW });
    expect(report).toMatchObject({ accountsAll: 4, accountsCi: 3, sizeMessages: 1100 });
    expect(report.activeWithinDays[1]).toBe(0);
    expect(report.activeWithinDays[10]).toBe(1);
    expect(report.countAtLeast[0]).toBe(2);
    expect(legacyMetricsText(report)).toBe(
      "# HELP total number of accounts\n# TYPE accounts gauge\naccounts 4\n# HELP number of CI accounts\n# TYPE ci_accounts gauge\nci_accounts 3\n# HELP number of non-CI accounts\n# TYPE nonci_accounts gauge\nnonci_accounts 1\n",
    );
  });

  it.each([
    ["cur", 500],
    ["new", 600],
    [undefined, 1100],
  ] as const)("filters messages by folder kind %s", async (mdir, bytes) => {
    const r = setup();
    expect((await buildReport(r.config, { now: NOW, mdir })).bytesAtLeast[0]).toBe(bytes);
  });

  it("writes Prometheus text readable by everyone", async () => {
    const r = setup();
    const text = prometheusText(await buildReport(r.config, { now: NOW }));
    expect(text).toContain('chatmail_storage_bytes{kind="messages"} 1100');
    expect(text).toContain('chatmail_accounts{kind="user"} 1');
    expect(text).toContain('chatmail_accounts_active{days="10"} 1');
    const path = join(r.dir, "textfile", "fsreport.prom");
    await writePublic(path, text);
    expect(readFileSync(path, "utf8")).toBe(text);
    expect(statSync(path).mode & 0o777).toBe(0o644);
  });

  it("prints a human summary with short sizes", async () => {
    const r = setup();
    expect(summaryText(await buildReport(r.config, { now: NOW }))).toContain("accounts: 4 (3 CI)");
    expect([humanSize(500), humanSize(123_456), humanSize(5e8), humanSize(2.5e9)]).toEqual([
      " 0.50K",
      "  123K",
      "  500M",
      " 2.50G",
    ]);
  });
});
