// The archive's layout: what its members are called, and the small manifest that comes first. An archive is a
// tar stream (GNU format; several tar archives one after the other, read with tar --ignore-zeros):
//   chatmail-state.json                     the manifest (below)
//   <part>/root/<path>                      a file of the part at /<path>
//   <part>/mail/<path>                      a file of the part at <mailboxesDir>/<path>
//   chatmail-state.commit                   added by the tool, last, once the whole stream checked out
// Pure: text in, text out.
import { PARTS, type Part, type Place } from "./entries";

export const MANIFEST_MEMBER = "chatmail-state.json";
/** The member that tells the restore script the stream is whole; only the tool writes it (tools/state/tar.ts). */
export const COMMIT_MEMBER = "chatmail-state.commit";
export const ARCHIVE_FORMAT = "chatmail-relay-state";
export const ARCHIVE_FORMAT_VERSION = 1;

export interface ArchiveManifest {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly formatVersion: number;
  readonly mailDomain: string;
  /** The mailboxesDir of the relay it was taken from (informative: a restore places mail files in its own). */
  readonly mailboxesDir: string;
  readonly parts: readonly Part[];
  /** When the archive was made, ISO 8601 UTC. */
  readonly created: string;
  /** This project's version that made it (`chatmail-relay-pulumi 0.1.0 <commit>`). */
  readonly tool: string;
}

/** The manifest as the archive holds it: one line of JSON. */
export function manifestText(m: Omit<ArchiveManifest, "format" | "formatVersion">): string {
  const full: ArchiveManifest = {
    format: ARCHIVE_FORMAT,
    formatVersion: ARCHIVE_FORMAT_VERSION,
    mailDomain: m.mailDomain,
    mailboxesDir: m.mailboxesDir,
    parts: PARTS.filter((p) => m.parts.includes(p)),
    created: m.created,
    tool: m.tool,
  };
  return JSON.stringify(full);
}

/** Reads a manifest; throws an Error that says what is wrong with it. */
export function parseManifest(text: string): ArchiveManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error("its manifest is not JSON");
  }
  const m = raw as Partial<Record<keyof ArchiveManifest, unknown>>;
  if (!m || typeof m !== "object" || m.format !== ARCHIVE_FORMAT)
    throw new Error(`its manifest is not of a ${ARCHIVE_FORMAT} archive`);
  if (m.formatVersion !== ARCHIVE_FORMAT_VERSION)
    throw new Error(
      `its format version is ${String(m.formatVersion)}; this checkout reads version ${ARCHIVE_FORMAT_VERSION}`,
    );
  const str = (k: keyof ArchiveManifest) => {
    if (typeof m[k] !== "string" || m[k] === "") throw new Error(`its manifest has no ${k}`);
    return m[k] as string;
  };
  if (!Array.isArray(m.parts) || m.parts.some((p) => !(PARTS as readonly unknown[]).includes(p)))
    throw new Error(`its manifest's parts are not a list of ${PARTS.join(", ")}`);
  return {
    format: ARCHIVE_FORMAT,
    formatVersion: ARCHIVE_FORMAT_VERSION,
    mailDomain: str("mailDomain"),
    mailboxesDir: str("mailboxesDir"),
    parts: PARTS.filter((p) => (m.parts as unknown[]).includes(p)),
    created: str("created"),
    tool: str("tool"),
  };
}

/** What a member of an archive is, by its name. */
export type MemberInfo =
  | { readonly kind: "manifest" }
  | { readonly kind: "commit" }
  | {
      readonly kind: "state";
      readonly part: Part;
      readonly place: Place;
      /** Path relative to the place ("" for the place itself). */
      readonly path: string;
      /** The account folder it is in (or is), for mail places; undefined otherwise. */
      readonly account?: string;
    }
  | { readonly kind: "unknown" };

export function memberInfo(name: string): MemberInfo {
  const clean = name.replace(/^\.\//, "").replace(/\/+$/, "");
  if (clean === MANIFEST_MEMBER) return { kind: "manifest" };
  if (clean === COMMIT_MEMBER) return { kind: "commit" };
  const m = /^([a-z]+)\/(root|mail)(?:\/(.*))?$/s.exec(clean);
  if (!m || !(PARTS as readonly string[]).includes(m[1])) return { kind: "unknown" };
  const path = m[3] ?? "";
  const first = path.split("/")[0];
  const account = m[2] === "mail" && first.includes("@") ? first : undefined;
  return {
    kind: "state",
    part: m[1] as Part,
    place: m[2] as Place,
    path,
    ...(account !== undefined ? { account } : {}),
  };
}
