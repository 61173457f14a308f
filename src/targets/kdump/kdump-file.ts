/**
 * A kdump-compressed dump (diskdump `KDUMP   ` or makedumpfile's flattened stream) opened for
 * random access, page by page, through a cache of decompressed pages: opening reads the headers
 * and the two bitmaps, and a read decompresses only the pages it touches.
 *
 * The kernel-dump target reads ELF vmcores; this file presents the compressed dump to it as one
 * (`elfView()`): an ELF header, a PT_NOTE with the dump's notes, and one PT_LOAD per run of
 * pages that bitmap 1 says exist, whose "file bytes" are the decompressed pages. A page that
 * exists but was not dumped (bitmap 2 clear: makedumpfile excluded it at its dump level) fails to
 * read with `page 0x… was excluded by makedumpfile (dump level N)`; everything else about the
 * dump keeps working.
 *
 * Bad input: a header, bitmap or page descriptor that lies gives DbgError('corrupt') naming the
 * field and, for a page, its physical address; only the pages it concerns are unreadable.
 */

import { FileByteSource, type ByteSource } from '../../common/byte-source.js';
import { DbgError } from '../../common/errors.js';
import { DecodeError, pageDecoder, type PageCompression, type PageDecoder } from './decompress.js';
import {
  DUMP_DH_COMPRESSED_INCOMPLETE,
  DUMP_DH_COMPRESSED_LZO,
  DUMP_DH_COMPRESSED_SNAPPY,
  DUMP_DH_COMPRESSED_ZLIB,
  DUMP_DH_COMPRESSED_ZSTD,
  isDiskdump,
  PAGE_DESC_BYTES,
  parseDiskdumpHeader,
  statusCompressions,
  type DiskdumpHeader,
} from './diskdump-header.js';
import { FlattenedSource, isFlattened } from './flattened.js';
import { note as elfNote } from '../elfcore/kernel-vmcore-writer.js';

/** True when `head` (a file's first bytes) starts a kdump-compressed dump, plain or flattened. */
export function isKdumpCompressed(head: Buffer): boolean {
  return isDiskdump(head) || isFlattened(head);
}

/** A read of a page makedumpfile left out. */
export class ExcludedPageError extends DbgError {
  constructor(
    readonly page: number,
    readonly dumpLevel: number,
  ) {
    super('unmapped', `page 0x${page.toString(16)} was excluded by makedumpfile (dump level ${dumpLevel})`);
  }
}

const PAGE = 4096;
const CACHE_PAGES = 4096; // 16 MiB of decompressed pages
const SLAB_PAGES = 64;
const COMPRESSION_FLAGS: readonly [number, PageCompression][] = [
  [DUMP_DH_COMPRESSED_ZLIB, 'zlib'],
  [DUMP_DH_COMPRESSED_LZO, 'lzo'],
  [DUMP_DH_COMPRESSED_SNAPPY, 'snappy'],
  [DUMP_DH_COMPRESSED_ZSTD, 'zstd'],
];

/** A descriptor's flags -> its page's compression (null: stored as is); absent: flags that lie. */
const COMPRESSION_OF_FLAGS = new Map<number, PageCompression | null>([[0, null], ...COMPRESSION_FLAGS.map(([bit, kind]) => [bit, kind] as const)]);
const COMPRESSION_BITS = COMPRESSION_FLAGS.reduce((m, [bit]) => m | bit, 0);

/** Number of set bits in each byte value. */
const POPCOUNT = new Uint8Array(256).map((_, i) => {
  let n = 0;
  for (let v = i; v; v >>= 1) n += v & 1;
  return n;
});
const RANK_BLOCK = 64; // bytes of bitmap (512 pfns) per cumulative count

interface Run {
  readonly startPfn: number;
  readonly pages: number;
  /** Offset of this run's first byte in the ELF view. */
  readonly at: number;
}

export class KdumpFile {
  readonly header: DiskdumpHeader;
  readonly flattened: boolean;
  readonly warnings: string[] = [];
  /** The ELF notes (NT_PRSTATUS, QEMU CPU state, VMCOREINFO) as they appear in a PT_NOTE. */
  readonly notes: Buffer;
  private readonly bitmap1: Buffer;
  private readonly bitmap2: Buffer;
  /** ranks[i]: set bits of bitmap 2 from startPfn up to block i. */
  private readonly ranks: Float64Array;
  private readonly runs: Run[];
  private readonly cache = new Map<number, Buffer>();
  private readonly scratch = Buffer.allocUnsafe(PAGE);
  private slab = Buffer.alloc(0);
  private slabUsed = SLAB_PAGES;
  private elf?: ElfView;
  private excludedCount?: number;
  /** The dump file's descriptor, for the native decoder's reads (see filePosition). */
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    private readonly src: ByteSource,
    /** How pages are decompressed (native/kdump's addon when built). */
    readonly decoder: PageDecoder,
  ) {
    this.flattened = src instanceof FlattenedSource;
    const file = src instanceof FlattenedSource ? src.file : src;
    this.fd = file instanceof FileByteSource ? file.descriptor() : undefined;
    const h = (this.header = parseDiskdumpHeader(src));
    const name = src.name;
    this.bitmap1 = src.read(h.bitmap1, h.bitmapBytes);
    this.bitmap2 = src.read(h.bitmap2, h.bitmapBytes);
    this.ranks = this.countRanks();
    this.runs = this.findRuns();
    this.notes = this.readNotes();
    if (h.status & DUMP_DH_COMPRESSED_INCOMPLETE) {
      this.warnings.push(`${name} is marked incomplete (makedumpfile ran out of space): pages it did not write read as errors`);
    }
    const dumped = this.ranks[this.ranks.length - 1]!;
    const last = h.descriptors + dumped * PAGE_DESC_BYTES;
    if (last > src.size && !(h.status & DUMP_DH_COMPRESSED_INCOMPLETE)) {
      this.warnings.push(
        `bitmap 2 has ${dumped} dumped pages, whose descriptors need the file to reach 0x${last.toString(16)}, but it ends at 0x${src.size.toString(16)}: the dump is truncated; pages past the end fail to read`,
      );
    }
  }

  static open(path: string, opts: { decoder?: PageDecoder } = {}): KdumpFile {
    const file = FileByteSource.open(path, { pageBytes: PAGE, cachePages: 4096 });
    let src: ByteSource = file;
    try {
      const head = file.readUpTo(0, 16);
      if (isFlattened(head)) src = new FlattenedSource(file, path);
      else if (!isDiskdump(head)) throw new DbgError('bad-input', `${path}: not a kdump-compressed dump (no "KDUMP   " or "makedumpfile" signature)`);
      return new KdumpFile(path, src, opts.decoder ?? pageDecoder());
    } catch (e) {
      src.close();
      throw e;
    }
  }

  /** One line for `::status`: format, compression, dump level. */
  describe(): string {
    const h = this.header;
    const z = statusCompressions(h.status);
    const excluded = this.excludedPages();
    return (
      `kdump-compressed${this.flattened ? ' (flattened)' : ''}, version ${h.version}, ${z.length ? z.join('+') : 'uncompressed'} pages, ` +
      `dump level ${h.dumpLevel}, ${this.dumpedPages()} pages dumped${excluded ? `, ${excluded} excluded` : ''}` +
      (h.split ? ` (one file of a split dump: pfns 0x${h.startPfn.toString(16)}-0x${h.endPfn.toString(16)})` : '')
    );
  }

  dumpedPages(): number {
    return this.ranks[this.ranks.length - 1]!;
  }

  /** Pages bitmap 1 has and bitmap 2 lacks (counted once). */
  excludedPages(): number {
    if (this.excludedCount !== undefined) return this.excludedCount;
    let n = 0;
    for (let i = 0; i < this.bitmap1.length; i++) {
      const x = this.bitmap1[i]! & ~this.bitmap2[i]!;
      if (x) n += POPCOUNT[x]!;
    }
    return (this.excludedCount = n);
  }

  /** The physical ranges of pages that exist (bitmap 1), in bytes. */
  regions(): { start: number; end: number }[] {
    return this.runs.map((r) => ({ start: r.startPfn * PAGE, end: (r.startPfn + r.pages) * PAGE }));
  }

  /** True when bitmap 2 says page `pfn` was dumped. */
  isDumped(pfn: number): boolean {
    return pfn >= 0 && pfn < this.header.maxMapnr && (this.bitmap2[pfn >>> 3]! & (1 << (pfn & 7))) !== 0;
  }

  exists(pfn: number): boolean {
    return pfn >= 0 && pfn < this.header.maxMapnr && (this.bitmap1[pfn >>> 3]! & (1 << (pfn & 7))) !== 0;
  }

  /**
   * The 4 KiB of page `pfn`, decompressed (a cached buffer: do not modify it). Throws
   * ExcludedPageError for a page makedumpfile left out, 'unmapped' for one the machine did not
   * have, 'corrupt' for a page whose descriptor or data lies.
   */
  page(pfn: number): Buffer {
    const h = this.header;
    const at = () => `physical 0x${(pfn * PAGE).toString(16)}`;
    if (!this.isDumped(pfn)) {
      if (this.exists(pfn)) throw new ExcludedPageError(pfn * PAGE, h.dumpLevel);
      throw new DbgError('unmapped', `${at()} is not in ${this.src.name}: the dumped machine had no page there`);
    }
    if (pfn < h.startPfn || pfn >= h.endPfn) {
      throw new DbgError('unmapped', `${at()} is in another file of this split dump (this one holds pfns 0x${h.startPfn.toString(16)}-0x${h.endPfn.toString(16)})`);
    }
    const index = this.rank(pfn);
    const descAt = h.descriptors + index * PAGE_DESC_BYTES;
    const bad = (what: string) => new DbgError('corrupt', `${this.src.name}: page descriptor ${index} (${at()}, at file offset 0x${descAt.toString(16)}) ${what}`);
    if (descAt + PAGE_DESC_BYTES > this.src.size) throw bad(`is past the end of the file (0x${this.src.size.toString(16)}): the dump is truncated`);
    const d = this.src.read(descAt, PAGE_DESC_BYTES);
    // Numbers, not a BigInt per page: an offset past 2^53 is past the end of any file and fails
    // the bounds check below (its message reads the exact value again).
    const offset = d.readUInt32LE(0) + d.readUInt32LE(4) * 0x1_0000_0000;
    const size = d.readUInt32LE(8);
    const flags = d.readUInt32LE(12);
    const hit = this.cache.get(offset);
    if (hit) {
      this.cache.delete(offset);
      this.cache.set(offset, hit);
      return hit;
    }
    if (offset === 0 && size === 0 && h.status & DUMP_DH_COMPRESSED_INCOMPLETE) throw bad('is empty: makedumpfile never wrote this page (the dump is incomplete)');
    if (size === 0 || size > PAGE) throw bad(`says the page's data is ${size} bytes; a 4096-byte page is stored in 1 to 4096`);
    if (offset < h.descriptors || offset + size > this.src.size) {
      throw bad(`says the page's data is at file offset 0x${d.readBigUInt64LE(0).toString(16)} (+${size}), outside the page data (0x${h.descriptors.toString(16)}-0x${this.src.size.toString(16)})`);
    }
    const kind = COMPRESSION_OF_FLAGS.get(flags);
    if (kind === undefined) {
      const unknown = flags & ~COMPRESSION_BITS;
      throw bad(`has flags 0x${flags.toString(16)}, ${unknown ? 'with unknown bits' : 'naming two compressions'}`);
    }
    if (kind === null && size !== PAGE) throw bad(`stores the page uncompressed in ${size} bytes; an uncompressed page is 4096`);
    const out = this.newPage();
    const filePos = this.fd !== undefined && this.decoder.readDecode ? this.filePosition(offset, size) : undefined;
    try {
      if (filePos !== undefined) this.decoder.readDecode!(this.fd!, filePos, size, kind, out);
      else if (kind === null) this.readData(offset, size).copy(out, 0, 0, size); // a copy: readData's is the scratch buffer
      else this.decoder.decode(kind, this.readData(offset, size), size, out);
    } catch (e) {
      if (e instanceof DecodeError) throw bad(`points at ${size} bytes that do not decompress: ${e.message}`);
      if (e instanceof DbgError && e.code === 'io') throw new DbgError('io', `${this.src.name}: ${e.message}`);
      throw e;
    }
    this.cache.set(offset, out);
    if (this.cache.size > CACHE_PAGES) this.cache.delete(this.cache.keys().next().value as number);
    return out;
  }

  /** Where the dump's bytes at `offset` sit in its file (a flattened record may not hold them all). */
  private filePosition(offset: number, size: number): number | undefined {
    return this.src instanceof FlattenedSource ? this.src.filePosition(offset, size) : offset;
  }

  /**
   * A buffer for one decompressed page, cut from a 256 KiB slab: one allocation per 64 pages
   * instead of one per page. A page is never written again once cached, so views of it that
   * callers keep stay valid; a slab is freed when none of its pages is referenced.
   */
  private newPage(): Buffer {
    if (this.slabUsed === SLAB_PAGES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_PAGES * PAGE);
      this.slabUsed = 0;
    }
    const at = this.slabUsed++ * PAGE;
    return this.slab.subarray(at, at + PAGE);
  }

  /**
   * Compressed bytes, straight from the file (past its block cache: each page's are read once):
   * the first `size` bytes of the returned buffer, which may be longer (the scratch buffer).
   */
  private readData(offset: number, size: number): Buffer {
    if (!this.src.readInto) return this.src.read(offset, size);
    this.src.readInto(offset, this.scratch, 0, size);
    return this.scratch;
  }

  /** `length` bytes at physical `addr`, page by page. */
  read(addr: number, length: number): Buffer {
    const first = Math.floor(addr / PAGE);
    const off = addr - first * PAGE;
    if (off + length <= PAGE) return this.page(first).subarray(off, off + length);
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const a = addr + done;
      const pfn = Math.floor(a / PAGE);
      const o = a - pfn * PAGE;
      const n = Math.min(PAGE - o, length - done);
      this.page(pfn).copy(out, done, o, o + n);
      done += n;
    }
    return out;
  }

  /** The dump as an ELF vmcore (see the file comment), for the kernel-dump target. */
  elfView(): ByteSource {
    return (this.elf ??= new ElfView(this, this.runs, this.src.name));
  }

  close(): void {
    this.fd = undefined;
    this.cache.clear();
    this.src.close();
  }

  // --- bitmaps ----------------------------------------------------------------------------------

  private countRanks(): Float64Array {
    const h = this.header;
    const bytes = Math.ceil(h.maxMapnr / 8);
    const blocks = Math.ceil(bytes / RANK_BLOCK);
    const ranks = new Float64Array(blocks + 1);
    // Only pfns in [startPfn, endPfn) have descriptors here (a split dump's other files hold the rest).
    let total = 0;
    for (let b = 0; b < blocks; b++) {
      ranks[b] = total;
      const end = Math.min(bytes, (b + 1) * RANK_BLOCK);
      for (let i = b * RANK_BLOCK; i < end; i++) {
        const v = this.bitmap2[i]!;
        if (v) total += POPCOUNT[v & this.ownMask(i)]!;
      }
    }
    ranks[blocks] = total;
    return ranks;
  }

  /** The bits of bitmap byte `i` that are pfns in [start, end) (default: the whole machine). */
  private byteMask(i: number, start = 0, end = this.header.maxMapnr): number {
    let m = 0xff;
    const lo = i * 8;
    if (lo < start) m &= start - lo >= 8 ? 0 : (0xff << (start - lo)) & 0xff;
    if (lo + 8 > end) m &= end <= lo ? 0 : 0xff >> (lo + 8 - end);
    return m;
  }

  /** The bits of bitmap byte `i` that have page descriptors in this file (a split dump's range). */
  private ownMask(i: number): number {
    return this.byteMask(i, this.header.startPfn, this.header.endPfn);
  }

  /** Number of dumped pages before `pfn` (its page descriptor's index). */
  private rank(pfn: number): number {
    const byte = pfn >>> 3;
    const block = Math.floor(byte / RANK_BLOCK);
    let n = this.ranks[block]!;
    for (let i = block * RANK_BLOCK; i < byte; i++) {
      const v = this.bitmap2[i]!;
      if (v) n += POPCOUNT[v & this.ownMask(i)]!;
    }
    const below = this.bitmap2[byte]! & ((1 << (pfn & 7)) - 1) & this.ownMask(byte);
    return n + POPCOUNT[below]!;
  }

  /** Runs of pfns bitmap 1 (or bitmap 2, where a lying bitmap 1 lacks them) says exist. */
  private findRuns(): Run[] {
    const max = this.header.maxMapnr;
    const runs: Run[] = [];
    let at = 0;
    let start = -1;
    let orphans = 0;
    const bytes = Math.ceil(max / 8);
    for (let i = 0; i <= bytes; i++) {
      const b1 = i < bytes ? this.bitmap1[i]! & this.byteMask(i) : 0;
      const b2 = i < bytes ? this.bitmap2[i]! & this.byteMask(i) : 0;
      if (b2 & ~b1) orphans += POPCOUNT[b2 & ~b1]!;
      const v = b1 | b2;
      if (start < 0 && v === 0) continue;
      if (start >= 0 && v === 0xff) continue;
      for (let bit = 0; bit < 8; bit++) {
        const pfn = i * 8 + bit;
        const set = (v >> bit) & 1 && pfn < max;
        if (set && start < 0) start = pfn;
        else if (!set && start >= 0) {
          runs.push({ startPfn: start, pages: pfn - start, at });
          at += (pfn - start) * PAGE;
          start = -1;
        }
      }
    }
    if (orphans > 0) this.warnings.push(`bitmap 2 marks ${orphans} pages dumped that bitmap 1 says do not exist; they are read anyway`);
    if (runs.length > 1_000_000) throw new DbgError('corrupt', `${this.src.name}: bitmap 1 splits memory into ${runs.length} ranges; dbg gives up above 1,000,000`);
    return runs;
  }

  /** The ELF notes: the sub-header's note area, with VMCOREINFO added from its own area if missing. */
  private readNotes(): Buffer {
    const h = this.header;
    const parts: Buffer[] = [];
    let hasVmcoreinfo = false;
    if (h.notes) {
      const n = this.src.read(h.notes.offset, h.notes.size);
      parts.push(n);
      hasVmcoreinfo = n.includes('VMCOREINFO\0', 0, 'latin1');
    }
    if (h.vmcoreinfo && !hasVmcoreinfo) parts.push(elfNote('VMCOREINFO', 0, this.src.read(h.vmcoreinfo.offset, h.vmcoreinfo.size)));
    return Buffer.concat(parts);
  }
}

/**
 * The ELF vmcore a kdump-compressed dump stands for, made on the fly: headers in memory, page
 * bytes from the KdumpFile.
 */
class ElfView implements ByteSource {
  readonly size: number;
  private readonly head: Buffer;
  private readonly dataStart: number;

  constructor(
    private readonly dump: KdumpFile,
    private readonly runs: readonly Run[],
    readonly name: string,
  ) {
    const phnum = 1 + runs.length;
    const noteAt = 64 + phnum * 56;
    const notes = dump.notes;
    this.dataStart = Math.ceil((noteAt + notes.length) / PAGE) * PAGE;
    const head = Buffer.alloc(this.dataStart);
    head.write('\x7fELF', 0, 'latin1');
    head[4] = 2; // ELFCLASS64
    head[5] = 1; // little-endian
    head[6] = 1;
    head.writeUInt16LE(4, 16); // ET_CORE
    head.writeUInt16LE(62, 18); // EM_X86_64
    head.writeUInt32LE(1, 20);
    head.writeBigUInt64LE(64n, 32); // e_phoff
    head.writeUInt16LE(64, 52);
    head.writeUInt16LE(56, 54);
    head.writeUInt16LE(phnum > 0xffff ? 0xffff : phnum, 56);
    if (phnum > 0xffff) throw new DbgError('corrupt', `${name}: ${runs.length} memory ranges are more than an ELF view can list`);
    const ph = (i: number, type: number, offset: number, addr: number, size: number) => {
      const o = 64 + i * 56;
      head.writeUInt32LE(type, o);
      head.writeUInt32LE(type === 1 ? 7 : 0, o + 4);
      head.writeBigUInt64LE(BigInt(offset), o + 8);
      head.writeBigUInt64LE(BigInt(addr), o + 16);
      head.writeBigUInt64LE(BigInt(addr), o + 24);
      head.writeBigUInt64LE(BigInt(size), o + 32);
      head.writeBigUInt64LE(BigInt(size), o + 40);
    };
    ph(0, 4, noteAt, 0, notes.length); // PT_NOTE
    runs.forEach((r, i) => ph(1 + i, 1, this.dataStart + r.at, r.startPfn * PAGE, r.pages * PAGE));
    notes.copy(head, noteAt);
    this.head = head;
    const last = runs[runs.length - 1];
    this.size = this.dataStart + (last ? last.at + last.pages * PAGE : 0);
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DbgError('corrupt', `${this.name}: read of ${length} bytes at offset 0x${offset.toString(16)} is past the end of the dump's memory`);
    }
    if (offset + length <= this.dataStart) return this.head.subarray(offset, offset + length);
    if (offset >= this.dataStart) {
      const i = this.runAt(offset - this.dataStart);
      const r = this.runs[i]!;
      const within = offset - this.dataStart - r.at;
      if (within + length <= r.pages * PAGE) return this.dump.read(r.startPfn * PAGE + within, length);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      if (pos < this.dataStart) {
        const n = Math.min(this.dataStart - pos, length - done);
        this.head.copy(out, done, pos, pos + n);
        done += n;
        continue;
      }
      const r = this.runs[this.runAt(pos - this.dataStart)]!;
      const within = pos - this.dataStart - r.at;
      const n = Math.min(r.pages * PAGE - within, length - done);
      this.dump.read(r.startPfn * PAGE + within, n).copy(out, done);
      done += n;
    }
    return out;
  }

  readUpTo(offset: number, length: number): Buffer {
    if (offset < 0 || offset >= this.size || length <= 0) return Buffer.alloc(0);
    return this.read(offset, Math.min(length, this.size - offset));
  }

  close(): void {
    this.dump.close();
  }

  private runAt(dataOffset: number): number {
    let lo = 0;
    let hi = this.runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runs[mid]!.at <= dataOffset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
