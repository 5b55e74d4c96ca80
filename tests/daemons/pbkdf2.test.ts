import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { newSalt, opensslPbkdf2Key, pbkdf2Hash } from "../../daemons/doveauth/pbkdf2";

const DOVEADM = "/usr/bin/doveadm";

describe("pbkdf2Hash", () => {
  it("matches a hash printed by `doveadm pw -s PBKDF2 -p secret`", async () => {
    expect(await pbkdf2Hash("secret", "fKGxbNE/4Rk56YNB")).toBe(
      "{PBKDF2}$1$fKGxbNE/4Rk56YNB$5000$e8326d6c31aa7cd1cb278218331e8957f132f587",
    );
  });

  it("falls back to node:crypto's key where WebAssembly SIMD is missing: the same stored form", async () => {
    for (const password of ["secret", "", "ünïcode pässwörd", "y".repeat(100)]) {
      const salt = newSalt();
      const hash = await pbkdf2Hash(password, salt);
      const key = await opensslPbkdf2Key(password, salt, 5000);
      expect(hash).toBe(`{PBKDF2}$1$${salt}$5000$${key.toString("hex")}`);
    }
  });

  it("makes 16-character salts from the crypt alphabet, different every time", () => {
    const a = newSalt();
    expect(a).toMatch(/^[./0-9A-Za-z]{16}$/);
    expect(newSalt()).not.toBe(a);
  });

  it.skipIf(!existsSync(DOVEADM))(
    "makes hashes `doveadm pw -t` verifies, also of unusual passwords",
    async () => {
      for (const password of ["q9mr3faue1xy", `p"a'ss\\wo$rd ünï`, "x".repeat(256)]) {
        const hash = await pbkdf2Hash(password);
        expect(hash).toMatch(/^\{PBKDF2\}\$1\$[./0-9A-Za-z]{16}\$5000\$[0-9a-f]{40}$/);
        const out = execFileSync(DOVEADM, ["pw", "-t", hash, "-p", password], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        expect(out.toString()).toContain("(verified)");
      }
    },
  );
});
