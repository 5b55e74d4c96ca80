// QR codes as PNG bytes: the qrcode library computes the module matrix, pngjs encodes it. Both are pure
// functions of their input, so the same link always gives the same bytes (the build must be deterministic).
import { PNG } from "pngjs";
import * as QRCode from "qrcode";

/** Pixels per QR module: the home page link (29 modules) becomes a 296-pixel image, sharp on screen and paper. */
const PIXELS_PER_MODULE = 8;
/** Light border around the symbol, in modules; ISO/IEC 18004 asks for a quiet zone of 4. */
const QUIET_ZONE_MODULES = 4;

/** A black-on-white PNG of the QR code for `text` (error correction M: the code carries no logo). */
export function qrPng(text: string): Uint8Array {
  const matrix = QRCode.create(text, { errorCorrectionLevel: "M" }).modules;
  const side = (matrix.size + 2 * QUIET_ZONE_MODULES) * PIXELS_PER_MODULE;
  const png = new PNG({ width: side, height: side });
  for (let y = 0; y < side; y++) {
    const row = Math.floor(y / PIXELS_PER_MODULE) - QUIET_ZONE_MODULES;
    for (let x = 0; x < side; x++) {
      const col = Math.floor(x / PIXELS_PER_MODULE) - QUIET_ZONE_MODULES;
      const inside = row >= 0 && col >= 0 && row < matrix.size && col < matrix.size;
      const value = inside && matrix.get(row, col) ? 0 : 255;
      const i = (y * side + x) * 4;
      png.data[i] = png.data[i + 1] = png.data[i + 2] = value;
      png.data[i + 3] = 255;
    }
  }
  // Grey scale without alpha keeps the file small; a fixed deflate level keeps the bytes stable.
  return new Uint8Array(PNG.sync.write(png, { colorType: 0, deflateLevel: 9 }));
}
