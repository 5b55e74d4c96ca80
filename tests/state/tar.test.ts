// The tool's tar reader on streams GNU tar wrote (GNU long names, pax paths, archives one after the other,
// pieces of any size), and the state's layout: what each part holds for a config, and that docs/continuity.md
// names every entry.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import {
  manifestText,
  memberInfo,
  MANIFEST_MEMBER,
  parseManifest,
  parseParts,
  PARTS,
  relayState,
} from "../../core/state";
import { commitTar, TarError, TarScanner } from "../../tools/state/tar";
import { configFor, DOMAIN, ROOT } from "../plan/helpers";

const dir = mkdtempSync(join(tmpdir(), "state-tar-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LONG = `${"x".repeat(150)},S=3,W=3:2,S`;
const MANIFEST = manifestText({
  mailDomain: DOMAIN,
  mailboxesDir: `/home/vmail/mail/${DOMAIN}`,
  parts: ["keys", "mailboxes"],
  created: "2026-01-01T00:00:00Z",
  tool: "test",
});

/** Files below a fresh folder, then one archive of `names` in `format`. */
function tarOf(files: Record<string, string>, names: string[], format = "gnu"): Buffer {
  const base = mkdtempSync(join(dir, "t-"));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(base, name, ".."), { recursive: true });
    writeFileSync(join(base, name), content);
  }
  const r = spawnSync("tar", [`--format=${format}`, "-C", base, "-cf", "-", ...names], {
    encoding: "buffer",
  });
  expect(r.status).toBe(0);
  return r.stdout;
}

function scan(stream: Buffer, pieceSize: number, capture?: string): TarScanner {
  const s = new TarScanner(capture);
  for (let i = 0; i < stream.length; i += pieceSize) s.push(stream.subarray(i, i + pieceSize));
  s.end();
  return s;
}

describe("the tar reader", () => {
  const stream = Buffer.concat([
    tarOf({ [MANIFEST_MEMBER]: MANIFEST }, [MANIFEST_MEMBER]),
    tarOf({ "keys/root/etc/dkimkeys/opendkim.private": "PEM\n" }, ["keys"]),
    tarOf({ [`mailboxes/mail/a@${DOMAIN}/cur/${LONG}`]: "abc" }, ["mailboxes"], "gnu"),
    tarOf({ [`mailboxes/mail/b@${DOMAIN}/cur/${LONG}`]: "defg" }, ["mailboxes"], "pax"),
    commitTar(0),
  ]);

  it.each([1, 7, 512, 513, 10240, 1 << 20])(
    "reads the manifest and counts every part in pieces of %i bytes",
    (size) => {
      const s = scan(stream, size, "keys/root/etc/dkimkeys/opendkim.private");
      expect(s.manifest).toEqual(parseManifest(MANIFEST));
      expect(s.manifestError).toBeUndefined();
      expect(s.committed).toBe(true);
      expect(s.captured?.toString()).toBe("PEM\n");
      expect(s.counts.keys).toMatchObject({ files: 1, bytes: 4 });
      expect(s.counts.mailboxes).toMatchObject({ files: 2, bytes: 7 });
      expect([...s.counts.mailboxes.accounts].sort()).toEqual([`a@${DOMAIN}`, `b@${DOMAIN}`]);
      expect(s.counts.accounts.files).toBe(0);
    },
  );

  it("reads names longer than 100 characters, from GNU long-name and pax headers", () => {
    for (const [account, content] of [
      [`a@${DOMAIN}`, "abc"],
      [`b@${DOMAIN}`, "defg"],
    ])
      expect(scan(stream, 1000, `mailboxes/mail/${account}/cur/${LONG}`).captured?.toString()).toBe(content);
  });

  it("says when the stream does not start with the manifest, or ends inside a member", () => {
    const noManifest = scan(tarOf({ "keys/root/x": "x" }, ["keys"]), 1000);
    expect(noManifest.manifestError).toBe(`it does not start with its manifest (${MANIFEST_MEMBER})`);
    const bad = scan(tarOf({ [MANIFEST_MEMBER]: '{"format":"x"}' }, [MANIFEST_MEMBER]), 1000);
    expect(bad.manifestError).toBe("its manifest is not of a chatmail-relay-state archive");
    const cut = new TarScanner();
    cut.push(stream.subarray(0, 700));
    expect(() => cut.end()).toThrow(/ends inside a member/);
    expect(() => new TarScanner().end()).toThrow(/holds no archive/);
    expect(() => new TarScanner().push(Buffer.alloc(512, 0x41))).toThrow(TarError);
  });
});

describe("the manifest", () => {
  it("is one line of JSON naming the relay, the parts in order, the date and the tool", () => {
    expect(MANIFEST).not.toContain("\n");
    expect(parseManifest(MANIFEST)).toEqual({
      format: "chatmail-relay-state",
      formatVersion: 1,
      mailDomain: DOMAIN,
      mailboxesDir: `/home/vmail/mail/${DOMAIN}`,
      parts: ["keys", "mailboxes"],
      created: "2026-01-01T00:00:00Z",
      tool: "test",
    });
  });

  it("refuses a newer format version and a damaged manifest, saying which", () => {
    const m = JSON.parse(MANIFEST);
    expect(() => parseManifest(JSON.stringify({ ...m, formatVersion: 2 }))).toThrow(
      /format version is 2; this checkout reads version 1/,
    );
    expect(() => parseManifest(JSON.stringify({ ...m, mailDomain: "" }))).toThrow(/has no mailDomain/);
    expect(() => parseManifest(JSON.stringify({ ...m, parts: ["keys", "passwords"] }))).toThrow(
      /parts are not a list/,
    );
    expect(() => parseManifest("{")).toThrow(/not JSON/);
  });

  it("names members by part and place", () => {
    expect(memberInfo("accounts/mail/a@b/password")).toEqual({
      kind: "state",
      part: "accounts",
      place: "mail",
      path: "a@b/password",
      account: "a@b",
    });
    expect(memberInfo("keys/root/etc/dkimkeys/")).toMatchObject({
      kind: "state",
      part: "keys",
      path: "etc/dkimkeys",
    });
    expect(memberInfo("accounts/mail/pending_notifications/1")).not.toHaveProperty("account");
    expect(memberInfo("passwords/mail/x")).toEqual({ kind: "unknown" });
    expect(memberInfo("chatmail-state.commit")).toEqual({ kind: "commit" });
  });
});

describe("the relay's state", () => {
  it("is the DKIM key and the ACME state, or the self-signed certificate, by tlsMode", () => {
    const keys = (tls: Record<string, string>) =>
      relayState(configFor(tls))
        .filter((e) => e.part === "keys")
        .map((e) => `${e.kind} /${e.path}`);
    expect(keys({})).toEqual([
      "folder /etc/dkimkeys",
      `file ${PATHS.dkimPrivateKey}`,
      "folder /var/lib/acme",
      ...["accounts", "keys", "certs", "live", "desired", "conf"].map((d) => `tree /var/lib/acme/${d}`),
    ]);
    expect(keys({ tls_mode: "self-signed" })).toEqual([
      "folder /etc/dkimkeys",
      `file ${PATHS.dkimPrivateKey}`,
      `file ${PATHS.selfSignedCert}`,
      `file ${PATHS.selfSignedKey}`,
    ]);
    // External certificates are the operator's files.
    expect(keys({ tls_external_cert_and_key: "/etc/ssl/r.pem /etc/ssl/r.key" })).toEqual([
      "folder /etc/dkimkeys",
      `file ${PATHS.dkimPrivateKey}`,
    ]);
  });

  it("has the account files the daemons write, the push queue and the nocreate file; the rest is the mailboxes", () => {
    const state = relayState(configFor());
    expect(state.filter((e) => e.part === "accounts").map((e) => `${e.place}:${e.kind}:${e.path}`)).toEqual([
      "mail:account-folder:",
      "mail:account-file:password",
      "mail:account-file:enforceE2EEincoming",
      "mail:account-file:metadata.json",
      "mail:tree:pending_notifications",
      "root:file:etc/chatmail-nocreate",
    ]);
    expect(state.filter((e) => e.part === "mailboxes").map((e) => e.kind)).toEqual(["account-rest"]);
    for (const e of state) expect(e.what.length, e.path).toBeGreaterThan(15);
  });

  it("is described entry by entry in docs/continuity.md", () => {
    const doc = readFileSync(join(ROOT, "docs/continuity.md"), "utf8");
    for (const tls of [{}, { tls_mode: "self-signed" }] as Array<Record<string, string>>)
      for (const e of relayState(configFor(tls))) {
        const name = e.path === "" ? "" : e.place === "root" ? `/${e.path}` : e.path;
        if (name !== "") expect(doc, name).toContain(name);
      }
    for (const p of PARTS) expect(doc).toContain(`\`${p}\``);
  });

  it("parses part lists, in archive order", () => {
    expect(parseParts("mailboxes,keys")).toEqual(["keys", "mailboxes"]);
    expect(() => parseParts("keys,dkim")).toThrow("unknown part 'dkim' (use keys, accounts, mailboxes)");
  });
});
