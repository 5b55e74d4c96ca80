import { describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { fileUnits, planFor, unit } from "./helpers";

describe("website part", () => {
  it("puts the built pages under the web root, readable by everyone", () => {
    const pages = fileUnits(planFor()).filter((f) => f.path.startsWith(`${PATHS.webRoot}/`));
    expect(pages.map((f) => f.path)).toEqual(expect.arrayContaining([`${PATHS.webRoot}/index.html`]));
    for (const page of pages) expect(page).toMatchObject({ owner: "root", mode: "0644", secret: false });
  });

  it("writes one secret invite per token outside the web root, named by number", () => {
    const plan = planFor({ invite_token: "firstToken1 secondToken2" });
    expect(unit(plan, `dir:${PATHS.invitesDir}`)).toMatchObject({ owner: "root", mode: "0700" });
    const invites = fileUnits(plan).filter((f) => f.path.startsWith(`${PATHS.invitesDir}/`));
    expect(invites.map((f) => f.path)).toEqual([
      `${PATHS.invitesDir}/invite-1.png`,
      `${PATHS.invitesDir}/invite-1.txt`,
      `${PATHS.invitesDir}/invite-2.png`,
      `${PATHS.invitesDir}/invite-2.txt`,
    ]);
    expect(invites.every((f) => f.secret && f.mode === "0600")).toBe(true);
    expect(invites[3].content).toBe("dcaccount:https://chat.example.org/new?secondToken2\n");
    expect(planFor().units.some((u) => u.id === `dir:${PATHS.invitesDir}`)).toBe(false);
  });
});
