import { describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { planFor, text } from "./helpers";

describe("postfix part", () => {
  it("sends mail through filtermail's ports and takes it back on the re-injection ports", () => {
    const ini = {
      filtermail_smtp_port: "11080",
      filtermail_smtp_port_incoming: "11081",
      postfix_reinject_port: "11025",
      postfix_reinject_port_incoming: "11026",
    };
    const master = text(planFor(ini), "/etc/postfix/master.cf");
    expect(master).toContain("smtpd_proxy_filter=127.0.0.1:11080");
    expect(master).toContain("smtpd_proxy_filter=127.0.0.1:11081");
    expect(master).toMatch(/^127\.0\.0\.1:11025 inet n - n - 100 smtpd$/m);
    expect(master).toMatch(/^127\.0\.0\.1:11026 inet n - n - 100 smtpd$/m);
  });

  it("serves smtps to clients from the 443 multiplexer on loopback, reading their address from PROXY headers", () => {
    const master = text(planFor(), "/etc/postfix/master.cf");
    const proxied = master.slice(master.indexOf("127.0.0.1:8465 inet"));
    const service = proxied.slice(0, proxied.search(/\n\S/) + 1);
    expect(service).toContain("-o smtpd_upstream_proxy_protocol=haproxy");
    expect(service).toContain("-o smtpd_tls_wrappermode=yes");
    expect(service).toContain("-o smtpd_proxy_filter=127.0.0.1:");
  });

  it("puts maxMessageSize, the domain and the TLS files into main.cf", () => {
    const main = text(
      planFor({ max_message_size: "1048576", tls_mode: "self-signed" }),
      "/etc/postfix/main.cf",
    );
    expect(main).toMatch(/^message_size_limit = 1048576$/m);
    expect(main).toMatch(/^virtual_mailbox_domains = chat\.example\.org$/m);
    expect(main).toMatch(new RegExp(`^smtpd_tls_cert_file = ${PATHS.selfSignedCert}$`, "m"));
  });

  it("reaches Dovecot and OpenDKIM at the sockets those services create", () => {
    const main = text(planFor(), "/etc/postfix/main.cf");
    const inChroot = (path: string) => path.replace("/var/spool/postfix/", "");
    expect(main).toContain(`lmtp:unix:${inChroot(PATHS.dovecotLmtpSocket)}`);
    expect(main).toContain(`unix:${inChroot(PATHS.opendkimSocket)}`);
    expect(text(planFor(), "/etc/postfix/master.cf")).toContain(
      `smtpd_sasl_path=${inChroot(PATHS.dovecotAuthSocket)}`,
    );
  });
});
