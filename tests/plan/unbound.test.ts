import { describe, expect, it } from "vitest";
import { planFor, text } from "./helpers";

const conf = (ini: Record<string, string> = {}) =>
  text(planFor(ini), "/etc/unbound/unbound.conf.d/chatmail.conf");

describe("unbound part", () => {
  it("resolves from the root on loopback unless forwarders are set", () => {
    expect(conf()).toContain("interface: 127.0.0.1");
    expect(conf()).not.toContain("forward-zone");
    const c = conf({ resolver_forwarders: "192.0.2.53 2001:db8::53" });
    expect(c).toContain(
      'forward-zone:\n    name: "."\n    forward-addr: 192.0.2.53\n    forward-addr: 2001:db8::53\n',
    );
  });

  it("points resolv.conf at unbound, with the first forwarder as fallback", () => {
    expect(text(planFor(), "/etc/resolv.conf")).toMatch(/nameserver 127\.0\.0\.1\nnameserver 9\.9\.9\.9\n$/);
    expect(text(planFor({ resolver_forwarders: "192.0.2.53" }), "/etc/resolv.conf")).toMatch(
      /nameserver 192\.0\.2\.53\n$/,
    );
  });

  it("turns IPv6 off with disableIpv6", () => {
    expect(conf()).not.toContain("do-ip6");
    expect(conf({ disable_ipv6: "true" })).toContain("do-ip6: no");
  });
});
