// Rules that span several options, each a named assertion with the message an operator sees.
import type { RelayConfig } from "./options";

interface Rule {
  holds(c: RelayConfig): boolean;
  message(c: RelayConfig): string;
}

const RULES: Rule[] = [
  {
    holds: (c) => c.usernameMinLength <= c.usernameMaxLength,
    message: (c) =>
      `usernameMinLength: ${c.usernameMinLength} is above usernameMaxLength ${c.usernameMaxLength}; make it at most that`,
  },
  {
    holds: (c) => c.passwordMinLength <= c.passwordMaxLength,
    message: (c) =>
      `passwordMinLength: ${c.passwordMinLength} is above passwordMaxLength ${c.passwordMaxLength}; make it at most that`,
  },
  {
    holds: (c) => c.tlsMode !== "external" || (c.tlsCertPath !== "" && c.tlsKeyPath !== ""),
    message: () => "tlsMode: external needs both tlsCertPath and tlsKeyPath",
  },
  {
    holds: (c) => c.tlsMode === "external" || (c.tlsCertPath === "" && c.tlsKeyPath === ""),
    message: (c) => `tlsCertPath/tlsKeyPath: only used with tlsMode external, but tlsMode is ${c.tlsMode}`,
  },
  {
    holds: (c) => !(c.disableIpv6 && c.hostIpv6 !== ""),
    message: () =>
      "hostIpv6: set, but disableIpv6 is true and the relay gets no AAAA record; unset one of them",
  },
  {
    holds: (c) => c.hostProvider === "existing" || (c.hostIpv4 === "" && c.hostIpv6 === ""),
    message: (c) =>
      `hostIpv4/hostIpv6: only used with hostProvider existing, but hostProvider is ${c.hostProvider} (Hetzner gives the server its addresses)`,
  },
  {
    holds: (c) => c.hostProvider === "existing" || c.hostGeneration === 0,
    message: (c) =>
      `hostGeneration: only used with hostProvider existing, but hostProvider is ${c.hostProvider} (a replaced Hetzner server is a new server by itself)`,
  },
  {
    holds: (c) => !c.languages.includes("ALL") || c.languages.length === 1,
    message: () => "languages: ALL already lists every language; use it alone",
  },
  {
    holds: (c) => c.languages.length > 0,
    message: () => "languages: empty; list at least one of EN, RU or ALL",
  },
  {
    holds: (c) => new Set(localPorts(c)).size === localPorts(c).length,
    message: (c) => `ports: the loopback ports must differ, got ${localPorts(c).join(", ")}`,
  },
  {
    holds: (c) => !c.passthroughSenders.some((a) => !a.endsWith(`@${c.mailDomain}`)),
    message: (c) => `passthroughSenders: every entry must be an address at ${c.mailDomain}`,
  },
];

const localPorts = (c: RelayConfig) => [
  c.filtermailSmtpPort,
  c.filtermailSmtpPortIncoming,
  c.postfixReinjectPort,
  c.postfixReinjectPortIncoming,
  c.newAccountPort,
];

/** Messages of every rule the config breaks, empty when all hold. */
export function checkRules(config: RelayConfig): string[] {
  return RULES.filter((r) => !r.holds(config)).map((r) => r.message(config));
}

/** Rules only the Pulumi program needs (render and the daemons run without a host). */
export function checkDeployRules(c: RelayConfig): string[] {
  const problems: string[] = [];
  if (c.sshPrivateKey === undefined || c.sshPrivateKey.trim() === "") {
    problems.push("sshPrivateKey: required; set it with `pulumi config set --secret sshPrivateKey < key`");
  }
  if (c.hostProvider === "existing" && c.hostAddress === "") {
    problems.push("hostAddress: required with hostProvider existing; set the server's IP address or name");
  }
  if (c.hostProvider === "hetzner" && c.sshPublicKey === "") {
    problems.push(
      "sshPublicKey: required with hostProvider hetzner; the new server trusts this key for root",
    );
  }
  return problems;
}
