// The two helpers every script builder needs: quoting a word for sh and the content hash.
import { createHash } from "node:crypto";

export const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Quotes a word for sh. */
export const q = (s: string) => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
