/**
 * Zstandard decompression into a buffer of known size (fzstd, pure JavaScript): kdump pages
 * (makedumpfile -z) and zstd-compressed ELF sections (ld --compress-debug-sections=zstd).
 */

import { decompress } from 'fzstd';

/**
 * An output view for fzstd, which tests its `buf` argument with `== 1`: on a Buffer or a plain
 * Uint8Array that converts every byte to a string.
 */
class ZstdOut extends Uint8Array {
  [Symbol.toPrimitive](): number {
    return 0;
  }
}

/** `input` (one or more zstd frames) decompressed into `out`, which it must fill exactly; throws Error saying why not. */
export function zstdInto(input: Uint8Array, out: Buffer): void {
  let got: Uint8Array;
  try {
    got = decompress(input, new ZstdOut(out.buffer as ArrayBuffer, out.byteOffset, out.length));
  } catch (e) {
    throw new Error(`zstd: ${(e as Error).message}`);
  }
  if (got.length !== out.length) throw new Error(`zstd: ${got.length} bytes out, expected ${out.length}`);
  if (got.buffer !== out.buffer || got.byteOffset !== out.byteOffset) out.set(got);
}
