/**
 * The headers of a kdump-compressed dump ("diskdump", what `makedumpfile -c|-l|-p|-z` and QEMU
 * `dump-guest-memory -z|-l|-s` write), x86-64 layout:
 *
 * block 0: struct disk_dump_header
 *     0   8  signature "KDUMP   "
 *     8   4  header_version (1..6)
 *    12 390  utsname (6 x 65: sysname nodename release version machine domainname)
 *   408  16  timestamp (struct timeval)
 *   424   4  status: DUMP_DH_COMPRESSED_ZLIB 1, _LZO 2, _SNAPPY 4, _INCOMPLETE 8, _ZSTD 0x20
 *   428   4  block_size (the page size)
 *   432   4  sub_hdr_size (in blocks)
 *   436   4  bitmap_blocks (both bitmaps)
 *   440   4  max_mapnr (32-bit; max_mapnr_64 in the sub-header from version 6)
 *   444  16  total_ram_blocks, device_blocks, written_blocks, current_cpu
 *   460   4  nr_cpus
 * block 1: struct kdump_sub_header
 *     0   8  phys_base
 *     8   4  dump_level
 *    12   4  split
 *    16  16  start_pfn, end_pfn (version 2+)
 *    32  16  offset_vmcoreinfo, size_vmcoreinfo (version 3+)
 *    48  16  offset_note, size_note (version 4+: ELF notes, with VMCOREINFO among them)
 *    64  16  offset_eraseinfo, size_eraseinfo (version 5+)
 *    80  24  start_pfn_64, end_pfn_64, max_mapnr_64 (version 6+)
 * blocks 1 + sub_hdr_size ...: bitmap 1 (pages that exist), then bitmap 2 (pages dumped),
 *     bitmap_blocks / 2 blocks each, one bit per pfn, least significant bit first
 * then: one page_desc per bit set in bitmap 2, in pfn order:
 *     {u64 offset, u32 size, u32 flags, u64 page_flags}; flags 0 = stored raw
 * then: the pages' data.
 */

import type { ByteSource } from '../../common/byte-source.js';
import { DbgError } from '../../common/errors.js';
import type { PageCompression } from './decompress.js';

export const KDUMP_SIGNATURE = 'KDUMP   ';
export const DUMP_DH_COMPRESSED_ZLIB = 0x1;
export const DUMP_DH_COMPRESSED_LZO = 0x2;
export const DUMP_DH_COMPRESSED_SNAPPY = 0x4;
export const DUMP_DH_COMPRESSED_INCOMPLETE = 0x8;
export const DUMP_DH_EXCLUDED_VMEMMAP = 0x10;
export const DUMP_DH_COMPRESSED_ZSTD = 0x20;

export const PAGE_DESC_BYTES = 24;
const MAX_PFN = 2 ** 40; // 4 PiB of 4 KiB pages: more than any x86-64 machine addresses

export interface DiskdumpHeader {
  readonly version: number;
  readonly utsname: { sysname: string; nodename: string; release: string; version: string; machine: string; domainname: string };
  readonly status: number;
  readonly blockSize: number;
  readonly subHeaderBlocks: number;
  readonly bitmapBlocks: number;
  readonly maxMapnr: number;
  readonly nrCpus: number;
  readonly physBase: bigint;
  readonly dumpLevel: number;
  readonly split: boolean;
  readonly startPfn: number;
  readonly endPfn: number;
  readonly vmcoreinfo?: { offset: number; size: number };
  readonly notes?: { offset: number; size: number };
  /** File offsets of the two bitmaps, each bitmapBytes long. */
  readonly bitmap1: number;
  readonly bitmap2: number;
  readonly bitmapBytes: number;
  /** File offset of the first page descriptor. */
  readonly descriptors: number;
}

export function isDiskdump(head: Buffer): boolean {
  return head.length >= 8 && head.toString('latin1', 0, 8) === KDUMP_SIGNATURE;
}

/** The compressions a dump's status word names (pages say their own in page_desc.flags). */
export function statusCompressions(status: number): PageCompression[] {
  const out: PageCompression[] = [];
  if (status & DUMP_DH_COMPRESSED_ZLIB) out.push('zlib');
  if (status & DUMP_DH_COMPRESSED_LZO) out.push('lzo');
  if (status & DUMP_DH_COMPRESSED_SNAPPY) out.push('snappy');
  if (status & DUMP_DH_COMPRESSED_ZSTD) out.push('zstd');
  return out;
}

export function parseDiskdumpHeader(src: ByteSource): DiskdumpHeader {
  const name = src.name;
  const bad = (what: string) => new DbgError('corrupt', `${name}: kdump header: ${what}`);
  if (src.size < 464) throw bad(`the file is ${src.size} bytes, shorter than the 464-byte disk_dump_header`);
  const h = src.read(0, 464);
  if (!isDiskdump(h)) throw bad('no "KDUMP   " signature at offset 0');
  const version = h.readInt32LE(8);
  if (version < 1 || version > 6) throw bad(`header_version ${version}; dbg reads versions 1 to 6`);
  const field = (i: number) => h.toString('latin1', 12 + i * 65, 12 + (i + 1) * 65).replace(/\0.*$/s, '');
  const utsname = { sysname: field(0), nodename: field(1), release: field(2), version: field(3), machine: field(4), domainname: field(5) };
  const status = h.readUInt32LE(424);
  const blockSize = h.readInt32LE(428);
  const subHeaderBlocks = h.readInt32LE(432);
  const bitmapBlocks = h.readUInt32LE(436);
  const nrCpus = h.readInt32LE(460);
  if (blockSize !== 4096) throw bad(`block_size ${blockSize}; x86-64 dumps have 4096-byte pages`);
  if (subHeaderBlocks < 1 || subHeaderBlocks > 1 << 20) throw bad(`sub_hdr_size ${subHeaderBlocks} blocks`);
  if (bitmapBlocks === 0 || bitmapBlocks % 2 !== 0) throw bad(`bitmap_blocks ${bitmapBlocks}: two bitmaps of equal size need an even, non-zero count`);
  if (nrCpus < 0 || nrCpus > 8192) throw bad(`nr_cpus ${nrCpus}`);
  const subAt = blockSize;
  if (src.size < subAt + 8 + 8) throw bad(`the file ends at 0x${src.size.toString(16)}, inside the sub-header at 0x${subAt.toString(16)}`);
  const s = src.readUpTo(subAt, 104);
  const u64 = (o: number): number => {
    if (o + 8 > s.length) return 0;
    const v = s.readBigUInt64LE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`sub-header field at +${o} is 0x${v.toString(16)}, beyond any file or pfn`);
    return Number(v);
  };
  const physBase = s.readBigUInt64LE(0);
  const dumpLevel = s.readInt32LE(8);
  const split = s.readInt32LE(12) !== 0;
  let maxMapnr = h.readUInt32LE(440);
  if (version >= 6) maxMapnr = u64(96) || maxMapnr;
  let startPfn = 0;
  let endPfn = maxMapnr;
  if (version >= 2 && split) {
    startPfn = version >= 6 ? u64(80) : u64(16);
    endPfn = version >= 6 ? u64(88) : u64(24);
  }
  const bitmapBytes = (bitmapBlocks / 2) * blockSize;
  if (maxMapnr > MAX_PFN) throw bad(`max_mapnr 0x${maxMapnr.toString(16)} pages is beyond any x86-64 machine`);
  if (Math.ceil(maxMapnr / 8) > bitmapBytes) {
    throw bad(`max_mapnr 0x${maxMapnr.toString(16)} needs ${Math.ceil(maxMapnr / 8)}-byte bitmaps, but bitmap_blocks ${bitmapBlocks} gives ${bitmapBytes} bytes each`);
  }
  if (startPfn > endPfn || endPfn > maxMapnr) throw bad(`split range of pfns 0x${startPfn.toString(16)}-0x${endPfn.toString(16)} is outside max_mapnr 0x${maxMapnr.toString(16)}`);
  const region = (off: number, size: number, what: string) => {
    if (size === 0 || off === 0) return undefined;
    if (off + size > src.size) throw bad(`${what} at 0x${off.toString(16)} (+0x${size.toString(16)}) runs past the end of the file (0x${src.size.toString(16)})`);
    return { offset: off, size };
  };
  const vmcoreinfo = version >= 3 ? region(u64(32), u64(40), 'VMCOREINFO') : undefined;
  const notes = version >= 4 ? region(u64(48), u64(56), 'the ELF notes') : undefined;
  const bitmap1 = (1 + subHeaderBlocks) * blockSize;
  const bitmap2 = bitmap1 + bitmapBytes;
  const descriptors = bitmap2 + bitmapBytes;
  if (descriptors > src.size) {
    throw bad(`the bitmaps end at 0x${descriptors.toString(16)}, past the end of the file (0x${src.size.toString(16)}): the dump is truncated or bitmap_blocks lies`);
  }
  return {
    version,
    utsname,
    status,
    blockSize,
    subHeaderBlocks,
    bitmapBlocks,
    maxMapnr,
    nrCpus,
    physBase,
    dumpLevel,
    split,
    startPfn,
    endPfn,
    vmcoreinfo,
    notes,
    bitmap1,
    bitmap2,
    bitmapBytes,
    descriptors,
  };
}
