import { describe, expect, it } from "vitest";
import { planFor, text } from "./helpers";

const conf = (ini: Record<string, string> = {}) => text(planFor(ini), "/etc/nginx/nginx.conf");

/** The text of the location block that starts with `header`, up to its closing brace. */
function locationBlock(c: string, header: string): string {
  const start = c.indexOf(`        ${header} {\n`);
  expect(start, header).toBeGreaterThan(0);
  return c.slice(start, c.indexOf("\n        }\n", start));
}

describe("nginx part", () => {
  it("multiplexes port 443 to smtps, imaps and the site by ALPN, each told the client's address", () => {
    const c = conf();
    expect(c).toContain("~\\bsmtp\\b 127.0.0.1:8465;");
    expect(c).toContain("~\\bimap\\b 127.0.0.1:8993;");
    expect(c).toContain("default 127.0.0.1:8443;");
    expect(c).toMatch(/ssl_preread on;\n(\s*#.*\n)*\s*proxy_protocol on;\n\s*proxy_pass \$backend;/);
    expect(c).toContain("listen 127.0.0.1:8443 ssl proxy_protocol default_server;");
    expect(c).toContain("real_ip_header proxy_protocol;");
    expect(c).toContain("listen [::]:443;");
    expect(conf({ disable_ipv6: "true" })).not.toContain("[::]");
  });

  it("redirects GET /new to the app with the query kept and proxies POST to newAccountPort", () => {
    const c = conf({ new_account_port: "12090" });
    for (const path of ["/new", "/cgi-bin/newemail.py"]) {
      const block = locationBlock(c, `location = ${path}`);
      expect(block).toMatch(
        /if \(\$request_method = GET\) \{\s+return 301 dcaccount:https:\/\/chat\.example\.org\$request_uri;/,
      );
      expect(block).toContain("proxy_pass http://127.0.0.1:12090;");
      // newaccount limits account creation per client address.
      expect(block).toContain("proxy_set_header X-Real-IP $remote_addr;");
    }
  });

  it("proxies the iroh relay only when the relay runs its own", () => {
    expect(conf()).toContain("location /relay {");
    expect(conf()).toContain("location = /ping {");
    expect(conf({ iroh_relay: "https://iroh.example.net" })).not.toMatch(/location (= )?\/(relay|ping)/);
  });

  it("answers ACME challenges on port 80 in acme mode only", () => {
    expect(conf()).toContain("proxy_pass http://acmetool;");
    expect(conf({ tls_mode: "self-signed" })).not.toContain("acmetool");
    expect(conf({ tls_mode: "self-signed" })).toContain("return 301 https://$host$request_uri;");
  });

  it("refuses paths with a dot segment except /.well-known/ on the site", () => {
    const c = conf();
    const site = c.slice(c.indexOf("listen 127.0.0.1:8443 ssl proxy_protocol default_server;"));
    expect(locationBlock(site, "location ~ /\\.(?!well-known/)")).toContain("return 404;");
  });

  it("defines one access log and redirects www to the domain", () => {
    expect(conf().match(/^\s*access_log /gm)).toHaveLength(1);
    expect(conf()).toContain("server_name www.chat.example.org;");
    expect(conf()).toContain("return 301 https://chat.example.org$request_uri;");
  });

  it("publishes the MTA-STS policy and autoconfig for the domain", () => {
    const plan = planFor({ mail_domain: "relay.example.net" });
    expect(text(plan, "/var/www/html/.well-known/mta-sts.txt")).toBe(
      "version: STSv1\nmode: enforce\nmx: relay.example.net\nmax_age: 2419200\n",
    );
    const xml = text(plan, "/var/www/html/.well-known/autoconfig/mail/config-v1.1.xml");
    expect(xml).toContain('<emailProvider id="relay.example.net">');
    expect(xml.match(/<port>443<\/port>/g)).toHaveLength(2);
  });
});
