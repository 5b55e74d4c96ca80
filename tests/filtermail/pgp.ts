// Builds OpenPGP packet sequences and ASCII armor byte by byte, for tests that need exact packet shapes
// (partial lengths, old-format headers, literal data) or encrypted-looking messages of any size.
import fc from "fast-check";

/** An OpenPGP packet with a new-format header and a one-, two- or five-octet length. */
export function packet(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xc0 | tag]), lengthOctets(body.length), body]);
}

export function lengthOctets(n: number): Buffer {
  if (n < 192) return Buffer.from([n]);
  if (n < 8384) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  return Buffer.from([255, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** A packet whose body is cut into partial-length chunks of 2^power octets, GopenPGP style. */
export function partialPacket(tag: number, body: Buffer, power: number): Buffer {
  const out: Buffer[] = [Buffer.from([0xc0 | tag])];
  let pos = 0;
  while (body.length - pos > 1 << power) {
    out.push(Buffer.from([0xe0 | power]), body.subarray(pos, pos + (1 << power)));
    pos += 1 << power;
  }
  const rest = body.subarray(pos);
  out.push(lengthOctets(rest.length), rest);
  return Buffer.concat(out);
}

/** ASCII armor with CRLF lines, a blank line after the header and a (dummy) CRC line. */
export function armor(bytes: Buffer, header = ""): Buffer {
  const b64 = bytes.toString("base64").match(/.{1,64}/g) ?? [];
  return Buffer.from(
    ["-----BEGIN PGP MESSAGE-----", header, ...b64, "=abcd", "-----END PGP MESSAGE-----", ""]
      .join("\r\n")
      .replace("\r\n\r\n\r\n", "\r\n\r\n"),
  );
}

/** A PGP/MIME message (RFC 3156) with a PKESK + SEIPD payload whose SEIPD body has `size` octets. */
export function encryptedMessage(from: string, to: string, size: number): Buffer {
  const payload = armor(
    Buffer.concat([packet(1, Buffer.alloc(60, 1)), packet(18, Buffer.alloc(size, 0x5a))]),
  );
  const head = [
    `From: ${from}`,
    `To: ${to}`,
    "Subject: [...]",
    "MIME-Version: 1.0",
    'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"',
    "",
    "--b1",
    "Content-Type: application/pgp-encrypted",
    "",
    "Version: 1",
    "--b1",
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head), payload, Buffer.from("--b1--\r\n")]);
}

/** What `editedArmor` may do to the text: insert one of these, replace a character by it, or delete one. */
export const ARMOR_EDITS = [
  "",
  "A",
  "=",
  "\r",
  "\n",
  "\r\n",
  "-",
  "_",
  "*",
  " ",
  "\u00ff",
  "delete",
] as const;

/**
 * Armor-like text: base64 of `bytes` in lines of one of `widths`, CRLF or LF, trailing line breaks, then one of
 * `edits` (or none, "") at a position: a character inserted, one replaced, or one deleted.
 */
export function editedArmor(
  bytes: fc.Arbitrary<Uint8Array>,
  widths: readonly number[],
  edits: readonly string[] = ARMOR_EDITS,
): fc.Arbitrary<{ text: Buffer; width: number; lines: number; edited: boolean }> {
  return fc
    .record({
      bytes,
      width: fc.constantFrom(...widths),
      crlf: fc.boolean(),
      trailing: fc.constantFrom("", "\r\n", "\n", "\r\n\r\n"),
      edit: fc.constantFrom(...edits),
      replace: fc.boolean(),
      at: fc.nat(),
    })
    .map(({ bytes, width, crlf, trailing, edit, replace, at }) => {
      const lines =
        Buffer.from(bytes)
          .toString("base64")
          .match(new RegExp(`.{1,${width}}`, "g")) ?? [];
      let text = lines.join(crlf ? "\r\n" : "\n") + (lines.length > 0 ? trailing : "");
      if (edit !== "" && text.length > 0) {
        const i = at % text.length;
        const cut = edit === "delete" || replace ? i + 1 : i;
        text = text.slice(0, i) + (edit === "delete" ? "" : edit) + text.slice(cut);
      }
      return { text: Buffer.from(text, "latin1"), width, lines: lines.length, edited: edit !== "" };
    });
}
