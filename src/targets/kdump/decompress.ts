/**
 * The page compressions of kdump-compressed dumps: each page is compressed on its own, so each
 * is decompressed on its own (a 4 KiB page in, a 4 KiB page out).
 *
 *   zlib    makedumpfile -c, QEMU dump-guest-memory -z: a zlib stream (compress2)
 *   lzo     makedumpfile -l, QEMU -l: LZO1X-1
 *   snappy  makedumpfile -p, QEMU -s: a raw Snappy block
 *   zstd    makedumpfile -z: one Zstandard frame
 *
 * Two decoders: native/kdump (an addon over the system's zlib, liblzo2, libsnappy and libzstd,
 * the ones makedumpfile and crash use), and JavaScript ones here (node:zlib, LZO1X and Snappy
 * decoded in this file, fzstd), used when the addon is not built or DBG_KDUMP_DECODER=js. The
 * JavaScript ones run at 15-40 k pages per CPU second, the addon at several times that: what a
 * cold read of a page costs is mostly its decoding.
 *
 * Every decoder writes into a buffer of the page size and fails, never reads or writes out of
 * bounds, on input that lies: a back-reference before the start, a length past the end, a
 * stream that ends early. The caller turns the failure into a message naming the page.
 */

import { inflateSync } from 'node:zlib';
import { DbgError } from '../../common/errors.js';
import { KDUMP_FLAG, kdumpAddon, type KdumpAddon } from '../../common/kdump-addon.js';
import { zstdInto } from '../../common/zstd.js';

export type PageCompression = 'zlib' | 'lzo' | 'snappy' | 'zstd';

/** Why a compressed page could not be decoded (caught and reworded by the page reader). */
export class DecodeError extends Error {}

/** Decodes pages: `length` bytes of `input` into `out`, which they must fill exactly; throws DecodeError. */
export interface PageDecoder {
  /** 'native' (native/kdump) or 'js'. */
  readonly kind: 'native' | 'js';
  decode(compression: PageCompression, input: Buffer, length: number, out: Buffer): void;
  /**
   * Reads `length` bytes at `offset` of the open file `fd` and decodes them into `out` (null: a
   * page stored as is), in one step; throws DecodeError, or DbgError('io') when the read fails.
   * Only the native decoder has it.
   */
  readDecode?(fd: number, offset: number, length: number, compression: PageCompression | null, out: Buffer): void;
}

const nativeDecoder = (a: KdumpAddon): PageDecoder => ({
  kind: 'native',
  decode(compression, input, length, out) {
    const why = a.decode(KDUMP_FLAG[compression], input, length, out);
    if (why !== undefined) throw new DecodeError(why);
  },
  readDecode(fd, offset, length, compression, out) {
    const why = a.readDecode(fd, offset, length, compression === null ? 0 : KDUMP_FLAG[compression], out);
    if (why === undefined) return;
    if (why.startsWith('read: ')) throw new DbgError('io', `read of ${length} bytes at file offset 0x${offset.toString(16)} failed: ${why.slice(6)}`);
    throw new DecodeError(why);
  },
});

const jsDecoder: PageDecoder = {
  kind: 'js',
  decode(compression, input, length, out) {
    decompressPage(compression, length === input.length ? input : input.subarray(0, length), out);
  },
};

/**
 * The decoder to use: the addon when it is built, unless `prefer` (default: DBG_KDUMP_DECODER
 * from the environment) is 'js'. 'native' insists on the addon. Any other value is refused, as
 * is 'native' without the addon: a one-line DbgError('bad-input') naming the setting.
 */
export function pageDecoder(prefer: string | undefined = process.env.DBG_KDUMP_DECODER): PageDecoder {
  if (prefer === 'js') return jsDecoder;
  if (prefer !== undefined && prefer !== '' && prefer !== 'native') {
    throw new DbgError('bad-input', `DBG_KDUMP_DECODER=${prefer}: expected js (the JavaScript decoders) or native (native/kdump)`);
  }
  const a = kdumpAddon();
  if (a) return nativeDecoder(a);
  if (prefer === 'native') {
    throw new DbgError('bad-input', 'DBG_KDUMP_DECODER=native: native/kdump is not built (run `node scripts/setup.mjs`; it needs libdeflate-dev, liblzo2-dev, libsnappy-dev and libzstd-dev)');
  }
  return jsDecoder;
}

/** `input` decompressed into `out` by the JavaScript decoders, which it must fill exactly. */
export function decompressPage(kind: PageCompression, input: Buffer, out: Buffer): void {
  switch (kind) {
    case 'zlib':
      return inflateExact(input, out);
    case 'lzo':
      return lzo1x(input, out);
    case 'snappy':
      return snappy(input, out);
    case 'zstd':
      return zstdExact(input, out);
  }
}

function inflateExact(input: Buffer, out: Buffer): void {
  let got: Buffer;
  try {
    got = inflateSync(input, { maxOutputLength: out.length });
  } catch (e) {
    throw new DecodeError(`zlib: ${(e as Error).message}`);
  }
  if (got.length !== out.length) throw new DecodeError(`zlib: ${got.length} bytes out, expected ${out.length}`);
  got.copy(out);
}

function zstdExact(input: Buffer, out: Buffer): void {
  try {
    zstdInto(input, out);
  } catch (e) {
    throw new DecodeError((e as Error).message);
  }
}

/**
 * LZO1X (what lzo1x_1_compress writes). A stream of instructions, each a byte `t`:
 *   t < 16 after a match   M1: 2-byte copy, distance 1 + (t >> 2) + (next << 2)
 *   t < 16 otherwise       a literal run (t + 3 bytes; 0 means 18 + a 255-run length)
 *   16..31                 M4: distance 16384 + ..., length 2 + (t & 7) or a 255-run; distance
 *                          16384 exactly is the end of the stream
 *   32..63                 M3: distance 1 + 14 bits, length 2 + (t & 31) or a 255-run
 *   64..255                M2: distance 1 + 3+8 bits, length 1 + (t >> 5)
 * The low 2 bits of a match's last offset byte give 0..3 literals that follow it. After a
 * literal run, t < 16 is an M1 match of 3 bytes at distance 2049 + ....
 */
function lzo1x(src: Buffer, out: Buffer): void {
  const size = out.length;
  let ip = 0;
  let op = 0;
  const end = src.length;
  const byte = (): number => {
    if (ip >= end) throw new DecodeError('lzo: input ends inside an instruction');
    return src[ip++]!;
  };
  const runLength = (base: number): number => {
    let n = 0;
    while (ip < end && src[ip] === 0) {
      n += 255;
      ip++;
      if (n > size + 255) throw new DecodeError('lzo: run length beyond the page');
    }
    return n + base + byte();
  };
  const literals = (n: number): void => {
    if (ip + n > end) throw new DecodeError('lzo: literal run past the end of the input');
    if (op + n > size) throw new DecodeError('lzo: output past the end of the page');
    copyBytes(src, ip, out, op, n);
    ip += n;
    op += n;
  };
  const copy = (distance: number, n: number): void => {
    const from = op - distance;
    if (from < 0) throw new DecodeError(`lzo: back-reference ${distance} bytes before the start of the page`);
    if (op + n > size) throw new DecodeError('lzo: output past the end of the page');
    copyMatch(out, from, op, n);
    op += n;
  };

  let t = byte();
  let afterLiterals = false; // the state in which t < 16 means a 3-byte M1 match
  if (t > 17) {
    literals(t - 17);
    afterLiterals = t - 17 >= 4;
    t = byte();
  } else {
    ip--;
    t = -1;
  }
  for (;;) {
    if (t < 0) {
      t = byte();
      if (t < 16) {
        literals(t === 0 ? runLength(15) + 3 : t + 3);
        afterLiterals = true;
        t = byte();
      }
    }
    let trailing: number;
    if (t >= 64) {
      const distance = 1 + ((t >> 2) & 7) + (byte() << 3);
      copy(distance, (t >> 5) + 1);
      trailing = t & 3;
    } else if (t >= 32) {
      const n = (t & 31) === 0 ? runLength(31) : t & 31;
      const b0 = byte();
      const b1 = byte();
      copy(1 + (b0 >> 2) + (b1 << 6), n + 2);
      trailing = b0 & 3;
    } else if (t >= 16) {
      const n = (t & 7) === 0 ? runLength(7) : t & 7;
      const b0 = byte();
      const b1 = byte();
      const distance = ((t & 8) << 11) + (b0 >> 2) + (b1 << 6);
      if (distance === 0) break; // end of stream
      copy(distance + 0x4000, n + 2);
      trailing = b0 & 3;
    } else {
      const b = byte();
      if (afterLiterals) copy(1 + 0x800 + (t >> 2) + (b << 2), 3);
      else copy(1 + (t >> 2) + (b << 2), 2);
      trailing = t & 3;
    }
    afterLiterals = false;
    if (trailing === 0) {
      t = -1;
      continue;
    }
    literals(trailing);
    t = byte();
  }
  if (op !== size) throw new DecodeError(`lzo: ${op} bytes out, expected ${size}`);
}

/**
 * A raw Snappy block: a varint length, then elements whose tag's low 2 bits say which:
 * 0 literal (length in the tag, or in 1-4 following bytes), 1 copy with an 11-bit offset,
 * 2 copy with a 16-bit offset, 3 copy with a 32-bit offset.
 */
function snappy(src: Buffer, out: Buffer): void {
  const size = out.length;
  let ip = 0;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    if (ip >= src.length || shift > 28) throw new DecodeError('snappy: bad length header');
    const b = src[ip++]!;
    length += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  if (length !== size) throw new DecodeError(`snappy: the block holds ${length} bytes, expected ${size}`);
  let op = 0;
  const need = (n: number) => {
    if (ip + n > src.length) throw new DecodeError('snappy: input ends inside an element');
  };
  while (ip < src.length) {
    const tag = src[ip++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >> 2;
      if (n >= 60) {
        const bytes = n - 59;
        need(bytes);
        n = 0;
        for (let i = 0; i < bytes; i++) n += src[ip + i]! * 256 ** i;
        ip += bytes;
      }
      n += 1;
      need(n);
      if (op + n > size) throw new DecodeError('snappy: output past the end of the page');
      copyBytes(src, ip, out, op, n);
      ip += n;
      op += n;
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      need(1);
      n = ((tag >> 2) & 7) + 4;
      offset = ((tag >> 5) << 8) | src[ip++]!;
    } else if (kind === 2) {
      need(2);
      n = (tag >> 2) + 1;
      offset = src[ip]! | (src[ip + 1]! << 8);
      ip += 2;
    } else {
      need(4);
      n = (tag >> 2) + 1;
      offset = (src[ip]! | (src[ip + 1]! << 8) | (src[ip + 2]! << 16)) + src[ip + 3]! * 2 ** 24;
      ip += 4;
    }
    if (offset === 0 || offset > op) throw new DecodeError(`snappy: copy from ${offset} bytes back, at output byte ${op}`);
    if (op + n > size) throw new DecodeError('snappy: output past the end of the page');
    copyMatch(out, op - offset, op, n);
    op += n;
  }
  if (op !== size) throw new DecodeError(`snappy: ${op} bytes out, expected ${size}`);
}

/** A back-reference: `n` bytes from `from` to `to` (< from + n overlaps: a repeating pattern). */
function copyMatch(out: Buffer, from: number, to: number, n: number): void {
  if (n >= 32 && to - from >= n) {
    out.copyWithin(to, from, from + n);
    return;
  }
  for (let i = 0; i < n; i++) out[to + i] = out[from + i]!;
}

/** Literal bytes: short runs byte by byte, long ones natively (no view of `src` is made). */
function copyBytes(src: Buffer, from: number, out: Buffer, to: number, n: number): void {
  if (n >= 32) {
    src.copy(out, to, from, from + n);
    return;
  }
  for (let i = 0; i < n; i++) out[to + i] = src[from + i]!;
}
