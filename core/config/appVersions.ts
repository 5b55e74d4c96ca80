// The app versions file (appVersionsFile): the latest Delta Chat releases and where to get them, which clients
// read from the relay as /shared/vendor/deltachat/appversions. Checked at preview by the rules chatmail/relay
// tests its packaged file with (after 1.12.0, chatmaild/src/chatmaild/tests/test_appversions.py), so a client
// never gets a shape it does not expect, and a download link points only at Delta Chat's own release hosts.
import { ConfigError } from "./option";

/** Hosts a downloadUrl may point at. */
export const APP_DOWNLOAD_PREFIXES = ["https://github.com/deltachat/", "https://download.delta.chat/"];

const CLIENT_KEYS = ["clientId", "sources"];
const SOURCE_KEYS = ["sourceId", "versionInteger", "versionString", "downloadUrl"];

/** The file's JSON, checked, as one line (the metadata daemon answers it as one dict line). */
export function appVersionsJson(text: string, option = "appVersionsFile"): string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${option}: the file is not JSON (${(err as Error).message})`);
  }
  const problem = check(data);
  if (problem) throw new ConfigError(`${option}: ${problem}`);
  return JSON.stringify(data);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const nonEmptyText = (v: unknown) => typeof v === "string" && v !== "";

/** Exactly these keys, in any order. */
function keysProblem(v: Record<string, unknown>, keys: string[], where: string): string | undefined {
  const have = Object.keys(v).sort();
  return have.join() === [...keys].sort().join()
    ? undefined
    : `${where} has the keys ${JSON.stringify(have)}; use exactly ${JSON.stringify(keys)}`;
}

function check(data: unknown): string | undefined {
  if (!isObject(data)) return "the file must hold one JSON object";
  const top = keysProblem(data, ["clients"], "the object");
  if (top) return top;
  const clients = data.clients;
  if (!Array.isArray(clients) || clients.length === 0) return "clients must be a non-empty list";
  const clientIds = new Set<string>();
  for (const [i, client] of clients.entries()) {
    const where = `clients[${i}]`;
    if (!isObject(client)) return `${where} must be an object`;
    const keys = keysProblem(client, CLIENT_KEYS, where);
    if (keys) return keys;
    if (!nonEmptyText(client.clientId)) return `${where}.clientId must be non-empty text`;
    if (clientIds.has(client.clientId as string))
      return `${where}.clientId ${JSON.stringify(client.clientId)} is not unique`;
    clientIds.add(client.clientId as string);
    if (!Array.isArray(client.sources) || client.sources.length === 0)
      return `${where}.sources must be a non-empty list`;
    const sourceIds = new Set<string>();
    for (const [j, source] of client.sources.entries()) {
      const at = `${where}.sources[${j}]`;
      const problem = sourceProblem(source, at);
      if (problem) return problem;
      const id = (source as { sourceId: string }).sourceId;
      if (sourceIds.has(id)) return `${at}.sourceId ${JSON.stringify(id)} is not unique within the client`;
      sourceIds.add(id);
    }
  }
  return undefined;
}

function sourceProblem(source: unknown, at: string): string | undefined {
  if (!isObject(source)) return `${at} must be an object`;
  const keys = keysProblem(source, SOURCE_KEYS, at);
  if (keys) return keys;
  for (const key of ["sourceId", "versionString", "downloadUrl"])
    if (!nonEmptyText(source[key])) return `${at}.${key} must be non-empty text`;
  const v = source.versionInteger;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= 2 ** 32)
    return `${at}.versionInteger must be a whole number from 0 to 4294967295`;
  const url = source.downloadUrl as string;
  if (!APP_DOWNLOAD_PREFIXES.some((p) => url.startsWith(p)))
    return `${at}.downloadUrl ${JSON.stringify(url)} must start with ${APP_DOWNLOAD_PREFIXES.join(" or ")}`;
  return undefined;
}
