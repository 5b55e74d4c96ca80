// The testbed's choice of Debian release (`npm run test:e2e -- --os debian-13`): the command line, the rootfs's
// apt sources derived from this machine's bookworm ones, and cache keys that keep the releases apart.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseCommandLine } from "../e2e/harness";
import { rootfsKey, rootfsSources, ROOTFS_FORMAT } from "../e2e/rootfs";

const HOST_SOURCES = new Map([
  [
    "sources.list.d/debian.sources",
    [
      "Types: deb",
      "URIs: http://deb.debian.org/debian",
      "Suites: bookworm bookworm-updates",
      "Components: main",
      "",
      "Types: deb",
      "URIs: http://deb.debian.org/debian-security",
      "Suites: bookworm-security",
      "Components: main",
      "",
    ].join("\n"),
  ],
]);

describe("testbed release", () => {
  it("takes --os from the command line, refuses unknown systems and testbeds that boot Debian 12 only", () => {
    expect(parseCommandLine(["--os", "debian-13", "--only", "mail"], true)).toEqual({
      only: "mail",
      hold: false,
      serverOs: "debian-13",
    });
    expect(parseCommandLine(["--hold"], true)).toEqual({ only: undefined, hold: true, serverOs: undefined });
    expect(() => parseCommandLine(["--os", "ubuntu-24.04"], true)).toThrow(
      /--os: "ubuntu-24.04" is not allowed; use one of debian-12, debian-13/,
    );
    expect(() => parseCommandLine(["--os", "debian-13"], false)).toThrow(/boots Debian 12 only/);
  });

  it("gives a trixie rootfs the machine's sources with the release renamed, security and updates included", () => {
    const trixie = rootfsSources("trixie", HOST_SOURCES).get("sources.list.d/debian.sources")!;
    expect(trixie).toContain("Suites: trixie trixie-updates\n");
    expect(trixie).toContain("Suites: trixie-security\n");
    expect(trixie).not.toContain("bookworm");
    expect(trixie).toContain("URIs: http://deb.debian.org/debian-security\n");
    expect(rootfsSources("bookworm", HOST_SOURCES)).toEqual(HOST_SOURCES);
    // Another vendor's repository named after the release is not Debian's and keeps its name.
    const vendor = new Map([
      ["sources.list.d/x.list", "deb https://example.com/apt cloud-sdk-bookworm main\n"],
    ]);
    expect(rootfsSources("trixie", vendor)).toEqual(vendor);
  });

  it("keys the cache by release, and bookworm's key as before trixie existed", () => {
    const spec = { packages: ["dovecot-core", "postfix"], debconf: [] };
    const bookworm = rootfsKey({ suite: "bookworm", ...spec });
    const before = createHash("sha256")
      .update(JSON.stringify({ format: ROOTFS_FORMAT, packages: spec.packages, debconf: spec.debconf }))
      .digest("hex")
      .slice(0, 16);
    expect(bookworm).toBe(before);
    expect(rootfsKey({ suite: "trixie", ...spec })).not.toBe(bookworm);
  });
});
