// OpenDKIM: signs outgoing mail and bounces, and rejects incoming mail without a valid DKIM signature of the
// From: domain (docs/relay.md, 'OpenDKIM'). Our filtermail does not verify DKIM itself (docs/decisions.md,
// 'OpenDKIM verifies incoming mail'), so the screen.lua and final.lua policy of chatmail/relay 1.7.0
// (cmdeploy/src/cmdeploy/opendkim/) stays here; from 1.12.0's opendkim.conf come `MTA ORIGINATING` (bounces are
// signed) and DNSTimeout.
// The milter socket lives inside Postfix's chroot; postfix reaches it through the opendkim group (postfix part).
import type { PlanContext } from "../context";
import { DKIM_SELECTOR, PATHS, USERS } from "../facts";
import { q } from "../steps";
import { directory, ids, once, packages, service, templateFile, validation } from "../units";
import type { Unit } from "../types";

export function opendkim(ctx: PlanContext): Unit[] {
  const { config } = ctx;
  const socketDir = PATHS.opendkimSocket.slice(0, PATHS.opendkimSocket.lastIndexOf("/"));
  const vars = { dkimKeyName: `${DKIM_SELECTOR}._domainkey.${config.mailDomain}` };
  const dkim = { owner: USERS.opendkim, vars };
  const files = [
    templateFile(ctx, "/etc/opendkim.conf", "opendkim/opendkim.conf.njk", { vars }),
    templateFile(ctx, "/etc/opendkim/screen.lua", "opendkim/screen.lua.njk"),
    templateFile(ctx, "/etc/opendkim/final.lua", "opendkim/final.lua.njk"),
    templateFile(ctx, `${PATHS.dkimKeyDir}/KeyTable`, "opendkim/KeyTable.njk", dkim),
    templateFile(ctx, `${PATHS.dkimKeyDir}/SigningTable`, "opendkim/SigningTable.njk", dkim),
    // OpenDKIM leaks memory on long runs; a daily restart keeps it small (as cmdeploy relays do: chatmail/relay
    // 1.7.0, cmdeploy/src/cmdeploy/opendkim/systemd.conf).
    templateFile(
      ctx,
      "/etc/systemd/system/opendkim.service.d/10-chatmail.conf",
      "opendkim/10-chatmail.conf.njk",
    ),
  ];
  // The private key is the relay's DKIM identity, published in DNS: made once, never replaced.
  const genkey = [
    `runuser -u ${USERS.opendkim} -- /usr/sbin/opendkim-genkey -D ${q(PATHS.dkimKeyDir)} -d ${q(config.mailDomain)} -s ${DKIM_SELECTOR}`,
    `chown ${USERS.opendkim}:${USERS.opendkim} ${q(PATHS.dkimPrivateKey)}`,
    `chmod 0600 ${q(PATHS.dkimPrivateKey)}`,
  ].join("\n");
  return [
    packages("opendkim", ["opendkim", "opendkim-tools"]),
    directory("/etc/opendkim", { owner: USERS.opendkim, mode: "0750" }),
    directory(PATHS.dkimKeyDir, { owner: USERS.opendkim, mode: "0700", removal: "never" }),
    directory(socketDir, { owner: USERS.opendkim, mode: "0750" }),
    ...files,
    once("dkim-key", `DKIM key (selector ${DKIM_SELECTOR})`, PATHS.dkimPrivateKey, genkey, [
      `dir:${PATHS.dkimKeyDir}`,
    ]),
    // opendkim -n also runs the Lua policy scripts once, which catches their errors.
    validation("opendkim-config", "opendkim", "opendkim -n", files),
    service("opendkim.service", { restartOn: ids(files), after: ["check:opendkim-config"] }),
  ];
}
