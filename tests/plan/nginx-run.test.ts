// nginx started with the rendered nginx.conf in a mount and network namespace of its own (its ports 80, 443 and
// 8443 are the namespace's), with a stand-in for the new-account service on newAccountPort that echoes what it
// receives. curl, run inside the namespace, checks the behaviour clients rely on. Adaptations: the certificate is
// a throw-away one (tlsMode external), /run and the web root are temporary directories inside the namespace.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planFor, writeTree, testCertificate } from "./helpers";

const NEW_ACCOUNT_PORT = 12090;
let dir: string;
let results: Record<string, string>;

/** Requests made inside the namespace: name -> curl arguments (the output is status, Location and body). */
const REQUESTS: Record<string, string> = {
  httpRedirect: "http://chat.example.org/some/page?x=1",
  acmeChallenge: "http://chat.example.org/.well-known/acme-challenge/abc",
  getNew: "https://chat.example.org/new?inviteToken1",
  postNew: "-X POST https://chat.example.org/new?inviteToken1",
  postLegacy: "-X POST https://chat.example.org/cgi-bin/newemail.py",
  www: "https://www.chat.example.org/info.html",
  mtaSts: "https://mta-sts.chat.example.org/.well-known/mta-sts.txt",
  autoconfig: "https://chat.example.org/.well-known/autoconfig/mail/config-v1.1.xml",
  dotFolder: "https://chat.example.org/.git/config",
  dotFile: "https://chat.example.org/sub/.env",
  dotInWellKnown: "https://chat.example.org/.well-known/.secret",
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nginx-run-"));
  const { cert, key } = testCertificate(dir);
  const plan = planFor({
    tls_external_cert_and_key: `${cert} ${key}`,
    new_account_port: String(NEW_ACCOUNT_PORT),
  });
  const root = join(dir, "root");
  writeTree(plan, root, (p) => p.startsWith("/etc/nginx/") || p.startsWith("/var/www/html/"));
  // Dot files that reached the web root anyway (the deploy never copies them): nginx must not serve them.
  for (const rel of [".git/config", "sub/.env", ".well-known/.secret"]) {
    mkdirSync(dirname(join(root, "var/www/html", rel)), { recursive: true });
    writeFileSync(join(root, "var/www/html", rel), "secret\n");
  }
  mkdirSync(join(dir, "out"));
  mkdirSync(join(dir, "run"));
  const echo = `require("http").createServer((q, s) => s.end(q.method + " " + q.url)).listen(${NEW_ACCOUNT_PORT}, "127.0.0.1")`;
  const resolve = ["chat.example.org", "www.chat.example.org", "mta-sts.chat.example.org"]
    .flatMap((h) => [`--resolve ${h}:80:127.0.0.1`, `--resolve ${h}:443:127.0.0.1`])
    .join(" ");
  const curls = Object.entries(REQUESTS).map(
    ([name, args]) =>
      `curl -sk ${resolve} -o ${dir}/out/${name}.body -w '%{http_code} %{redirect_url}' ${args} >${dir}/out/${name}.status 2>&1 || true`,
  );
  writeFileSync(
    join(dir, "run.sh"),
    [
      "set -e",
      "ip link set lo up",
      `mount -t tmpfs tmpfs /run`,
      `mount --bind ${root}/var/www/html /var/www/html`,
      `node -e '${echo}' & echo $! >${dir}/echo.pid`,
      `nginx -c ${root}/etc/nginx/nginx.conf 2>${dir}/out/nginx.stderr`,
      // Wait for both listeners with a deadline (curl's own retries would hide which one is missing).
      `i=0; until curl -s -o /dev/null http://127.0.0.1:${NEW_ACCOUNT_PORT}/ && curl -s -o /dev/null http://127.0.0.1/; do i=$((i+1)); [ $i -lt 200 ] || { echo "listeners not up within 10 s" >&2; break; }; sleep 0.05; done`,
      ...curls,
      // ALPN "imap" is passed through to port 993 (nothing listens here, so the TLS handshake fails there).
      `echo | openssl s_client -connect 127.0.0.1:443 -alpn imap -servername chat.example.org >${dir}/out/alpn.out 2>&1 || true`,
      `echo | openssl s_client -connect 127.0.0.1:443 -alpn http/1.1 -servername chat.example.org >${dir}/out/alpn-http.out 2>&1 || true`,
      "nginx -s quit -c " + `${root}/etc/nginx/nginx.conf || true`,
      `kill $(cat ${dir}/echo.pid)`,
    ].join("\n"),
  );
  const r = spawnSync("unshare", ["--mount", "--net", "--fork", "sh", join(dir, "run.sh")], {
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.error) throw new Error(`unshare could not run: ${r.error.message}`);
  results = Object.fromEntries(
    Object.keys(REQUESTS).map((name) => [name, readFileSync(join(dir, "out", `${name}.status`), "utf8")]),
  );
  results.alpn = readFileSync(join(dir, "out/alpn.out"), "utf8");
  results.alpnHttp = readFileSync(join(dir, "out/alpn-http.out"), "utf8");
  for (const name of Object.keys(REQUESTS))
    results[`${name}Body`] = readFileSync(join(dir, "out", `${name}.body`), "utf8");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("nginx with the rendered configuration", () => {
  it("redirects plain HTTP to HTTPS, keeping the path", () => {
    expect(results.httpRedirect).toBe("301 https://chat.example.org/some/page?x=1");
  });

  it("sends a browser opening /new?TOKEN to the app with the token", () => {
    expect(results.getNew).toBe("301 dcaccount:https://chat.example.org/new?inviteToken1");
  });

  it("passes POST /new?TOKEN and the legacy CGI path to the new-account service with the query", () => {
    expect(results.postNew).toBe("200 ");
    expect(results.postNewBody).toBe("POST /new?inviteToken1");
    expect(results.postLegacyBody).toBe("POST /cgi-bin/newemail.py");
  });

  it("redirects www to the domain and serves the MTA-STS policy on mta-sts", () => {
    expect(results.www).toBe("301 https://chat.example.org/info.html");
    expect(results.mtaSts.startsWith("200")).toBe(true);
    expect(results.mtaStsBody).toContain("mx: chat.example.org");
  });

  it("refuses dot files and dot folders with 404 but serves /.well-known/", () => {
    expect(results.dotFolder).toBe("404 ");
    expect(results.dotFile).toBe("404 ");
    expect(results.dotInWellKnown).toBe("404 ");
    expect(results.autoconfig.startsWith("200")).toBe(true);
  });

  it("has no ACME challenge route outside acme mode", () => {
    expect(results.acmeChallenge).toBe("301 https://chat.example.org/.well-known/acme-challenge/abc");
  });

  it("passes a TLS connection asking for ALPN imap on to Dovecot's port instead of answering it", () => {
    // The site answers ALPN http/1.1 with the relay's certificate; imap goes to port 993, where nothing listens
    // in this namespace, so no certificate comes back.
    expect(results.alpnHttp).toContain("CN = chat.example.org");
    expect(results.alpn).toContain("no peer certificate available");
  });
});
