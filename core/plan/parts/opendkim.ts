// OpenDKIM: signs outgoing mail and bounces, and rejects incoming mail without a valid DKIM signature of the
// From: domain (docs/relay.md, 'OpenDKIM'). Our filtermail does not verify DKIM itself (docs/decisions.md,
// 'OpenDKIM verifies incoming mail'), so the screen.lua and final.lua policy of chatmail/relay 1.7.0
// (cmdeploy/src/cmdeploy/opendkim/) stays here; from 1.12.0's opendkim.conf come `MTA ORIGINATING` (bounces are
// signed) and DNSTimeout.
// The milter socket lives inside Postfix's chroot; postfix reaches it through the opendkim group (postfix part).
import type { PlanContext } from "../context";
import { DKIM_SELECTOR, PATHS, USERS } from "../facts";
import { q } from "../steps";
import { contentFile, directory, ids, once, packages, service, templateFile, validation } from "../units";
import type { FileUnit, OnceUnit, Unit } from "../types";

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
  const keyDir = directory(PATHS.dkimKeyDir, { owner: USERS.opendkim, mode: "0700", removal: "never" });
  const key = dkimKey(config.mailDomain, config.dkimPrivateKey, keyDir.id);
  return [
    packages("opendkim", ["opendkim", "opendkim-tools"]),
    directory("/etc/opendkim", { owner: USERS.opendkim, mode: "0750" }),
    keyDir,
    directory(socketDir, { owner: USERS.opendkim, mode: "0750" }),
    ...files,
    key,
    // opendkim -n also runs the Lua policy scripts once, which catches their errors.
    validation("opendkim-config", "opendkim", "opendkim -n", files),
    service("opendkim.service", {
      // A key from the config restarts OpenDKIM when it changes; a key made on the server never changes.
      restartOn: ids(key.kind === "file" ? [...files, key] : files),
      after: ["check:opendkim-config"],
    }),
  ];
}

/**
 * The private key, the relay's DKIM identity published in DNS. Given in the config (dkimPrivateKey, a relay moved
 * or restored to a new server): a secret file, written whenever the value changes. Otherwise made once on the
 * server and never replaced. The two are exclusive, not a create-once step guarded by the file: both would run
 * in the configure phase, where the step could make a second key before the file lands. Either way the key ends
 * owned by opendkim with mode 0600; the create-once step sets that also on a key restored from a backup (which may
 * carry the old server's numeric owner). Removing the option keeps the file: /etc/dkimkeys is server state that
 * the prune step never removes, and the create-once step then finds the key in place.
 */
function dkimKey(domain: string, given: string | undefined, keyDir: string): FileUnit | OnceUnit {
  const owner = { owner: USERS.opendkim, mode: "0600", after: [keyDir] };
  if (given !== undefined) return contentFile(PATHS.dkimPrivateKey, `${given}\n`, { ...owner, secret: true });
  const genkey = `runuser -u ${USERS.opendkim} -- /usr/sbin/opendkim-genkey -D ${q(PATHS.dkimKeyDir)} -d ${q(domain)} -s ${DKIM_SELECTOR}`;
  const ownAndMode = [
    `chown ${USERS.opendkim}:${USERS.opendkim} ${q(PATHS.dkimPrivateKey)}`,
    `chmod ${owner.mode} ${q(PATHS.dkimPrivateKey)}`,
  ].join("\n");
  return once("dkim-key", `DKIM key (selector ${DKIM_SELECTOR})`, PATHS.dkimPrivateKey, genkey, {
    after: owner.after,
    then: ownAndMode,
  });
}
