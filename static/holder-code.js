// The holder code (DESIGN §5), computed on the holder's own phone: RFC 6238 TOTP (HMAC-SHA1,
// 30-second steps from the Unix epoch, 6 digits) over the voucher's secret, which only the
// holder's session receives. Nothing is fetched to show the next code, so it keeps working
// without signal once /me is open. src/domain/holder_code.rs is the same on the service.
import { qrcode } from "/static/qrcode.mjs";

const keys = new Map();

function bytesOfHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Whether this browser can compute holder codes (WebCrypto needs https or localhost). */
export function available() {
  return Boolean(globalThis.crypto && crypto.subtle);
}

/** The step a time (milliseconds since the epoch) falls in. */
export function stepOf(ms, stepSeconds = 30) {
  return Math.floor(ms / 1000 / stepSeconds);
}

/** The code of `step` for the hex secret `secretHex` (RFC 4226 HOTP with the step as counter). */
export async function codeAt(secretHex, step, digits = 6) {
  let key = keys.get(secretHex);
  if (!key) {
    key = await crypto.subtle.importKey("raw", bytesOfHex(secretHex), { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
    keys.set(secretHex, key);
  }
  const counter = new DataView(new ArrayBuffer(8));
  counter.setUint32(0, Math.floor(step / 2 ** 32));
  counter.setUint32(4, step >>> 0);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, counter.buffer));
  const offset = mac[19] & 0x0f;
  const bits = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bits % 10 ** digits).padStart(digits, "0");
}

/** What the QR code holds: the voucher code, then the holder code (`XXXX-XXXX-XXXX-NNNNNN`). */
export function payload(voucherCode, holderCode) {
  return `${voucherCode}-${holderCode}`;
}

/**
 * Reads what a desk's scanner typed: a voucher code alone, or a QR payload with the holder code
 * after it (18 symbols once spaces and hyphens are dropped). `{ code, holder }`, holder null
 * when there was none.
 */
export function parsePayload(text) {
  const bare = text.toUpperCase().replace(/[\s-]/g, "");
  if (bare.length === 18 && /^[0-9]{6}$/.test(bare.slice(12))) {
    return { code: bare.slice(0, 12), holder: bare.slice(12) };
  }
  return { code: text.trim(), holder: null };
}

/** Draws `text` as a QR code (level M, a 4-module quiet zone) on `canvas`, `size` pixels wide. */
export function drawQr(canvas, text, size = 200) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Alphanumeric");
  qr.make();
  const n = qr.getModuleCount();
  const cell = Math.max(1, Math.floor(size / (n + 8)));
  const side = cell * (n + 8);
  const ratio = globalThis.devicePixelRatio || 1;
  canvas.width = side * ratio;
  canvas.height = side * ratio;
  canvas.style.width = `${side}px`;
  canvas.style.height = `${side}px`;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.fillStyle = "#fff";
  g.fillRect(0, 0, side, side);
  g.fillStyle = "#000";
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) {
      if (qr.isDark(r, c)) g.fillRect((c + 4) * cell, (r + 4) * cell, cell, cell);
    }
  }
}
