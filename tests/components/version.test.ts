// /etc/chatmail-version in upstream's layout, so that upstream's tooling and tests can read it: the commit of the
// deployed tree on the first line (what `git rev-parse HEAD` prints there), then this project's version.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { versionStamp } from "../../components/assets";

describe("the version stamp", () => {
  it("starts with the checkout's commit and names the project version next", () => {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    expect(versionStamp().split("\n")).toEqual([head, `chatmail-relay ${version}`, ""]);
  });
});
