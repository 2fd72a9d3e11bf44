/**
 * Host config files as text without losing a byte. containerd configs are meant to be UTF-8,
 * but real ones carry Latin-1 comments or registry passwords, and Go's TOML parsers accept such
 * bytes; decoding them as UTF-8 would turn each into U+FFFD and an edit would rewrite them all.
 * Here each byte that is not part of a valid UTF-8 sequence becomes a lone low surrogate
 * U+DC80..U+DCFF (Python's "surrogateescape"), which no valid UTF-8 decodes to, so
 * encode(decode(bytes)) is exactly `bytes` for any input and the agent's edits change no byte
 * outside what they insert.
 */

const ESCAPE_BASE = 0xdc00;
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) =>
    i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0; // no overlong forms
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no UTF-16 surrogates
  if (c >= 0xe1 && c <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0; // <= U+10FFFF
  return 0;
}

/** The file's text; bytes that are not UTF-8 become U+DC80..U+DCFF (see the module comment). */
export function decodeHostText(bytes: Uint8Array): string {
  try {
    return fatal.decode(bytes);
  } catch {
    // Not UTF-8 throughout: decode sequence by sequence.
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = "";
  let run = 0; // start of the current run of valid sequences
  let i = 0;
  while (i < buf.length) {
    const n = sequenceLength(buf, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += buf.toString("utf8", run, i) + String.fromCharCode(ESCAPE_BASE + buf[i]);
    i += 1;
    run = i;
  }
  return out + buf.toString("utf8", run, buf.length);
}

/** The bytes of text from {@link decodeHostText} (or any string): escapes back to their bytes. */
export function encodeHostText(text: string): Buffer {
  if (!/[\uDC80-\uDCFF]/.test(text)) return Buffer.from(text, "utf8");
  const parts: Buffer[] = [];
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++; // a surrogate pair: a real character
      continue;
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      parts.push(Buffer.from(text.slice(run, i), "utf8"), Buffer.from([c - ESCAPE_BASE]));
      run = i + 1;
    }
  }
  parts.push(Buffer.from(text.slice(run), "utf8"));
  return Buffer.concat(parts);
}
