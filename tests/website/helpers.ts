// Shared by the website tests: relay configs from chatmail.ini text, the project's page sources, a QR decoder
// and a loopback web server that serves a build from memory.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import { parseChatmailIni } from "../../core/config/ini";
import type { RelayConfig } from "../../core/config/options";
import { DEFAULT_WWW_FOLDER, loadWebsiteSources } from "../../components/websiteSources";
import type { WebsiteSources } from "../../core/website/types";

export const DOMAIN = "chat.example.org";

/** A RelayConfig for chat.example.org with the given extra chatmail.ini lines. */
export function relayConfig(...lines: string[]): RelayConfig {
  return parseChatmailIni(["[params]", `mail_domain = ${DOMAIN}`, ...lines].join("\n")).config;
}

let projectSources: WebsiteSources | undefined;
/** The pages in www/ of this project (read once). */
export function wwwSources(): WebsiteSources {
  projectSources ??= loadWebsiteSources(DEFAULT_WWW_FOLDER);
  return projectSources;
}

/** The project's sources with some files left out (undefined) or replaced. */
export function editedSources(changes: Record<string, string | undefined>): WebsiteSources {
  const sources = new Map(wwwSources());
  for (const [path, content] of Object.entries(changes)) {
    if (content === undefined) sources.delete(path);
    else sources.set(path, new TextEncoder().encode(content));
  }
  return sources;
}

export const text = (bytes: Uint8Array | undefined): string => {
  if (bytes === undefined) throw new Error("no such file in the build");
  return new TextDecoder().decode(bytes);
};

/** The text a QR code PNG decodes to, or undefined if no code is found. */
export function decodeQr(png: Uint8Array): string | undefined {
  const image = PNG.sync.read(Buffer.from(png));
  return jsQR(new Uint8ClampedArray(image.data), image.width, image.height)?.data;
}

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  txt: "text/plain; charset=utf-8",
};

export interface SiteServer {
  readonly url: string;
  /** Paths requested that were not in the build. */
  readonly notFound: string[];
  close(): Promise<void>;
}

/** Serves `sites` (URL prefix -> built files) on 127.0.0.1 at a free port, as nginx would serve the web root. */
export async function serveSites(
  sites: Record<string, ReadonlyMap<string, Uint8Array>>,
): Promise<SiteServer> {
  const notFound: string[] = [];
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    const [, prefix, ...rest] = path.split("/");
    const file = rest.join("/") === "" ? "index.html" : rest.join("/");
    const body = sites[prefix]?.get(file);
    if (body === undefined) {
      notFound.push(path);
      res.writeHead(404).end();
      return;
    }
    const type = CONTENT_TYPES[file.split(".").pop() ?? ""] ?? "application/octet-stream";
    res.writeHead(200, { "content-type": type, "content-length": body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    notFound,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
