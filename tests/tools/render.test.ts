// `npm run render`, the offline main job: the full tree, the zone file and the plan from a stack file or a
// cmdeploy chatmail.ini, with no Pulumi CLI and no credentials.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const root = join(__dirname, "../..");
const work = mkdtempSync(join(tmpdir(), "render-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const render = (...args: string[]) =>
  spawnSync(join(root, "node_modules/.bin/tsx"), [join(root, "tools/render.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
  });

const TOKEN = "renderSecret123";
const INI = `[params]
mail_domain = chat.example.org
max_user_send_per_minute = 80
invite_token = ${TOKEN}
passdb_path = /home/vmail/passdb.sqlite
`;

describe("npm run render", () => {
  it("prints its usage with --help", () => {
    const r = render("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: npm run render -- \(--stack FILE \| --ini FILE\)/);
  });

  it("writes every file, the zone file and the plan from the example stack", () => {
    const out = join(work, "stack");
    const r = render("--stack", "Pulumi.prod.yaml", "--out", out);
    expect(r.status, r.stderr).toBe(0);
    for (const path of [
      "etc/postfix/main.cf",
      "etc/postfix/master.cf",
      "etc/dovecot/dovecot.conf",
      "etc/nginx/nginx.conf",
      "etc/opendkim.conf",
      "usr/local/lib/chatmaild/chatmail.ini",
      "usr/local/lib/chatmaild/chatmaild.js",
      "var/www/html/index.html",
      "etc/systemd/system/chatmaild.service",
    ]) {
      expect(existsSync(join(out, "files", path)), path).toBe(true);
    }
    expect(readFileSync(join(out, "files/etc/postfix/main.cf"), "utf8")).toContain(
      "myhostname = chat.example.org",
    );
    expect(readFileSync(join(out, "zone.txt"), "utf8")).toMatch(
      /chat\.example\.org\.\s+3600 IN MX\s+10 chat\.example\.org\./,
    );
    expect(readFileSync(join(out, "plan.txt"), "utf8")).toMatch(
      /^configure\s+[0-9a-f]{12}\s+file:\/etc\/postfix\/main\.cf$/m,
    );
    expect(readFileSync(join(out, "alerts.yml"), "utf8")).toContain(
      'chatmail_disk_free_bytes{relay=\\"chat.example.org\\"}',
    );
  });

  it("renders a cmdeploy chatmail.ini, reports its unknown keys and keeps secrets out of the plan summary", () => {
    const ini = join(work, "chatmail.ini");
    writeFileSync(ini, INI);
    const out = join(work, "ini");
    const r = render("--ini", ini, "--out", out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("note: passdb_path: not a setting of this relay");
    const chatmailIni = join(out, "files/usr/local/lib/chatmaild/chatmail.ini");
    expect(readFileSync(chatmailIni, "utf8")).toContain("max_user_send_per_minute = 80");
    expect(statSync(chatmailIni).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, "plan.txt"), "utf8")).not.toContain(TOKEN);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  it("gives the same bytes twice", () => {
    const a = join(work, "a");
    const b = join(work, "b");
    expect(render("--stack", "Pulumi.prod.yaml", "--out", a).status).toBe(0);
    expect(render("--stack", "Pulumi.prod.yaml", "--out", b).status).toBe(0);
    expect(execFileSync("diff", ["-r", a, b], { encoding: "utf8" })).toBe("");
  });

  it("refuses bad config with a message naming the option", () => {
    const ini = join(work, "bad.ini");
    writeFileSync(ini, "[params]\nmail_domain = chat.example.org\nmax_mailbox_size = 500X\n");
    const r = render("--ini", ini, "--out", join(work, "bad"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('maxMailboxSize: "500X" is not a size');
  });
});
