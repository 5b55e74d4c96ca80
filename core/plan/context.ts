// What a plan part knows: the config, the facts, the renderer and the prebuilt artifacts (assets). Template
// context = the config's options under their own names plus derived values computed here, never in templates.
import { irohRelayUrl, parseSizeMb, runsOwnIrohRelay, type RelayConfig } from "../config";
import { DKIM_SELECTOR, PATHS, PORTS, tlsPaths } from "./facts";
import type { Render } from "./render";

/** Everything the plan needs that is not config: read from disk by components/assets.ts, passed in. */
export interface Assets {
  /** templates/ by relative path. */
  readonly templates: ReadonlyMap<string, string>;
  /** The bundled daemons (dist/daemons/chatmaild.js). */
  readonly daemonBundle: string;
  /** Web page sources (www/ or the operator's wwwFolder), relative path to bytes. */
  readonly website: ReadonlyMap<string, Uint8Array>;
  /** Project version and source revision, written to /etc/chatmail-version. */
  readonly version: string;
  /** The text of the operator's appVersionsFile, when the config names one (checked by the plan). */
  readonly appVersions?: string;
}

export interface PlanContext {
  readonly config: RelayConfig;
  readonly assets: Assets;
  readonly render: Render;
  /** Values every template may use. */
  readonly vars: Record<string, unknown>;
  /** Reports a problem the operator should see that does not stop the plan (e.g. a missing translation). */
  readonly warn: (message: string) => void;
}

/** The systemd RuntimeDirectory= name of a socket under /run (`/run/doveauth/doveauth.socket` -> `doveauth`). */
export function runtimeDirectory(socket: string): string {
  const match = /^\/run\/([^/]+)\/[^/]+$/.exec(socket);
  if (!match) throw new Error(`plan: socket ${socket} is not directly inside a directory under /run`);
  return match[1];
}

export function templateVars(config: RelayConfig): Record<string, unknown> {
  const tls = tlsPaths(config);
  return {
    ...config,
    paths: PATHS,
    ports: PORTS,
    dkimSelector: DKIM_SELECTOR,
    tlsCert: tls.cert,
    tlsKey: tls.key,
    maxMailboxSizeMb: parseSizeMb(config.maxMailboxSize),
    irohRelayUrl: irohRelayUrl(config),
    runsOwnIrohRelay: runsOwnIrohRelay(config),
    // systemd creates the socket directories of the dict daemons (RuntimeDirectory=, space-separated).
    chatmaildRuntimeDirectories: [PATHS.doveauthSocket, PATHS.metadataSocket, PATHS.lastloginSocket]
      .map(runtimeDirectory)
      .join(" "),
    // Postfix: one client may hold a fifth of the submission processes.
    smtpClientConnectionLimit: Math.floor(config.maxSmtpConnections / 5),
  };
}
