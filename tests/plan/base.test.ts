import { describe, expect, it } from "vitest";
import { parseChatmailIni } from "../../core/config";
import { PATHS } from "../../core/plan/facts";
import type { FileUnit, LineUnit } from "../../core/plan/types";
import { configFor, planFor, text, unit } from "./helpers";

describe("base part", () => {
  it("writes the chatmail.ini the daemons read, readable by vmail only", () => {
    const plan = planFor({ max_user_send_per_minute: "42" });
    const ini = unit(plan, `file:${PATHS.chatmailIni}`) as FileUnit;
    expect(ini).toMatchObject({ owner: "root", group: "vmail", mode: "0640" });
    expect(parseChatmailIni(ini.content as string).config).toEqual(
      configFor({ max_user_send_per_minute: "42" }),
    );
  });

  it("keeps the mailboxes private to vmail and stamps the version", () => {
    const plan = planFor({ mailboxes_dir: "/srv/mail" });
    expect(unit(plan, "dir:/srv/mail")).toMatchObject({ owner: "vmail", mode: "0700" });
    expect(text(plan, PATHS.version)).toBe(
      "0123456789abcdef0123456789abcdef01234567\nchatmail-relay 0.1.0\n",
    );
    expect(text(plan, "/etc/mailname")).toBe("chat.example.org\n");
  });

  it("keeps logs in memory for three days and sets TZ without owning /etc/environment", () => {
    const plan = planFor();
    expect(text(plan, "/etc/systemd/journald.conf")).toContain("Storage=volatile\nMaxRetentionSec=3d\n");
    expect(unit(plan, "line:/etc/environment:TZ=") as LineUnit).toMatchObject({ line: "TZ=:/etc/localtime" });
    expect(plan.units.some((u) => u.id === "file:/etc/environment")).toBe(false);
  });
});
