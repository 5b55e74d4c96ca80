// The web pages under the web root, built from www/ (or the operator's wwwFolder) by core/website, and
// one printable invite per invite token, kept outside the web root where only root can read it (docs/relay.md,
// 'Web pages and invites').
import { buildWebsite } from "../../website/build";
import type { PlanContext } from "../context";
import { PATHS } from "../facts";
import { contentFile, directory } from "../units";
import type { Unit } from "../types";

/** Files sent as text (readable in `pulumi preview --diff`); others go base64-encoded. */
const TEXT_FILE = /\.(html|css|js|txt|svg|xml|json|md)$/;

function asText(path: string, bytes: Uint8Array): string | Uint8Array {
  if (!TEXT_FILE.test(path)) return bytes;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return bytes;
  }
}

export function website(ctx: PlanContext): Unit[] {
  const build = buildWebsite(ctx.config, ctx.assets.website);
  for (const warning of build.warnings) ctx.warn(warning);
  const pages = [...build.files]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, bytes]) => contentFile(`${PATHS.webRoot}/${path}`, asText(path, bytes)));
  // Invites are numbered, never named after their token: paths and unit ids appear in logs and plan summaries.
  // The folder holds nothing else, so once the last token is gone it goes with everything in it.
  const invites = build.invites.flatMap((invite, i) => [
    contentFile(`${PATHS.invitesDir}/invite-${i + 1}.png`, invite.png, { mode: "0600", secret: true }),
    contentFile(`${PATHS.invitesDir}/invite-${i + 1}.txt`, `${invite.link}\n`, {
      mode: "0600",
      secret: true,
    }),
  ]);
  return [
    ...pages,
    ...(invites.length > 0
      ? [directory(PATHS.invitesDir, { mode: "0700", removal: "with-contents" }), ...invites]
      : []),
  ];
}
