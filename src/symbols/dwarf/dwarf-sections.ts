import { inflateSync } from 'node:zlib';
import { DbgError } from '../../common/errors.js';
import { KDUMP_FLAG, kdumpAddon, type KdumpAddon } from '../../common/kdump-addon.js';
import { zstdInto } from '../../common/zstd.js';
import type { ElfFile, SectionHeader } from '../elf-file.js';

const SHF_COMPRESSED = 0x800n;
/** Sections from this size on are read on demand (DwarfSections.lazy). */
const LAZY_MIN = 1 << 20;

export interface LazySection {
  readonly buf: Buffer;
  /** Makes `len` bytes at section offset `off` valid in buf. */
  fill(off: number, len: number): void;
}

/**
 * A section read in 64 KiB pieces, each once, as bytes in it are needed: what strings
 * (.debug_str) and line programs (.debug_line) need, which are found by offset and whose length
 * shows only once read. A C++ core's backtrace names a few hundred strings of libstdc++'s 1.5 MB.
 */
export interface PagedSection {
  readonly buf: Buffer;
  /** How many bytes were read from the file so far (for tests: a piecewise section reads less than its size). */
  readonly bytesRead: number;
  /** Makes bytes [off, off + len) of the section valid in buf (clamped to its end). */
  need(off: number, len: number): void;
  /** The NUL-terminated string at `off`, which must be inside the section (to its end when no NUL follows). */
  cstring(off: number): string;
  /** Whether cstring(off) would be `want` (its UTF-8 bytes), without reading a piece for it. */
  isString(off: number, want: Buffer): boolean;
}
const ELFCOMPRESS_ZLIB = 1;
const ELFCOMPRESS_ZSTD = 2;

/**
 * The DWARF sections of one ELF file, each read (and decompressed) once, on first use.
 *
 * Compressed sections come in two shapes:
 *
 *   SHF_COMPRESSED (gcc -gz, ld --compress-debug-sections):
 *     Elf64_Chdr { u32 ch_type; u32 reserved; u64 ch_size; u64 ch_addralign }  (24 bytes)
 *     Elf32_Chdr { u32 ch_type; u32 ch_size; u32 ch_addralign }                 (12 bytes)
 *     then the compressed stream; ch_type 1 = zlib, 2 = zstd.
 *   .zdebug_* (the older GNU form): "ZLIB", u64 big-endian size, then a zlib stream.
 */
export class DwarfSections {
  /** Sections from this size on are read piece by piece (paged); tests lower both to check every string across pieces. */
  static pagedMin = 256 << 10;
  static piece = 64 << 10;
  /**
   * How many names a paged section compares or decodes by small reads of their own bytes before
   * it reads pieces. A 64 KiB piece costs as much as ~60 small reads where new memory is dear (16
   * new pages, ~15 us each on the bench machine; a small read ~4 us): a kernel's ::ps and ::stacks
   * made ~850 small reads and 8 pieces, against 50 pieces (3.3 MB) with the earlier limit of 256.
   */
  static loneReads = 1024;
  private readonly cache = new Map<string, Buffer | null>();

  constructor(readonly elf: ElfFile) {}

  get littleEndian(): boolean {
    return this.elf.header.littleEndian;
  }

  /** Whether the file has the section (compressed or not), without reading it. */
  has(name: string): boolean {
    const sec = this.elf.section(name) ?? this.elf.section('.z' + name.slice(1));
    return sec !== undefined && sec.type !== 8 /* SHT_NOBITS */ && sec.size > 0;
  }

  private readonly lazies = new Map<string, LazySection | null>();

  /**
   * A section read only where asked: a buffer of its size whose bytes are valid in the ranges
   * `fill` was called for. Large uncompressed sections (a kernel's 160 MB .debug_info) are not
   * read whole for a question that needs a few units: untouched memory costs no RSS. Small or
   * compressed sections come whole (fill does nothing). Undefined when absent.
   */
  lazy(name: string): LazySection | undefined {
    return once(this.lazies, name, () => {
      const sec = this.inPlace(name, LAZY_MIN);
      if (!sec) {
        const buf = this.get(name);
        return buf && { buf, fill: () => {} };
      }
      const buf = sparseBuffer(sec.size);
      const src = this.elf.source;
      return {
        buf,
        fill: (off, len) => {
          const n = Math.min(len, sec.size - off);
          if (src.readInto) src.readInto(sec.offset + off, buf, off, n);
          else src.read(sec.offset + off, n).copy(buf, off);
        },
      };
    });
  }

  private readonly pagedSections = new Map<string, PagedSection | null>();

  /**
   * A section for reading at offsets (PagedSection): a large uncompressed one is read in the
   * pieces asked for, others whole. Undefined when absent.
   */
  paged(name: string): PagedSection | undefined {
    return once(this.pagedSections, name, () => {
      const sec = this.inPlace(name, DwarfSections.pagedMin);
      if (sec) return new PiecewiseSection(this.elf, sec.offset, sec.size, DwarfSections.piece, DwarfSections.loneReads);
      const buf = this.get(name);
      return (
        buf && {
          buf,
          bytesRead: buf.length,
          need: () => {},
          cstring: (off) => {
            const end = buf.indexOf(0, off);
            return buf.toString('utf8', off, end < 0 ? buf.length : end);
          },
          isString: (off, want) => stringAt(buf, off, want, buf.length),
        }
      );
    });
  }

  /** The header of section `name` when it can be read in place: present, uncompressed, of `min` bytes or more. */
  private inPlace(name: string, min: number): SectionHeader | undefined {
    const sec = this.elf.section(name);
    if (!sec || (sec.flags & SHF_COMPRESSED) !== 0n || sec.type === 8 /* SHT_NOBITS */ || sec.size < min) return undefined;
    if (sec.offset + sec.size > this.elf.source.size) this.elf.sectionData(sec); // throws the ELF reader's message
    return sec;
  }

  /** The bytes of `.debug_<name>` (name given with its dot), decompressed; undefined when absent. */
  get(name: string): Buffer | undefined {
    return once(this.cache, name, () => this.load(name));
  }

  private load(name: string): Buffer | undefined {
    const elf = this.elf;
    const sec = elf.section(name);
    if (sec) {
      const raw = elf.sectionData(sec);
      if ((sec.flags & SHF_COMPRESSED) === 0n) return raw;
      const hdr = elf.is64 ? 24 : 12;
      if (raw.length < hdr) throw new DbgError('corrupt', `${elf.name}: compressed section ${name} is ${raw.length} bytes, shorter than its header (${hdr})`);
      const type = elf.u32(raw, 0);
      const size = elf.is64 ? Number(elf.u64(raw, 8)) : elf.u32(raw, 4);
      if (type !== ELFCOMPRESS_ZLIB && type !== ELFCOMPRESS_ZSTD) throw new DbgError('corrupt', `${elf.name}: section ${name} has unknown compression type ${type} (expected 1 zlib or 2 zstd)`);
      return decompressSection(elf.name, name, type === ELFCOMPRESS_ZLIB ? 'zlib' : 'zstd', raw.subarray(hdr), size);
    }
    const z = elf.section('.z' + name.slice(1));
    if (z) {
      const raw = elf.sectionData(z);
      if (raw.length < 12 || raw.toString('latin1', 0, 4) !== 'ZLIB') throw new DbgError('corrupt', `${elf.name}: section ${z.name} has no "ZLIB" header`);
      return decompressSection(elf.name, z.name, 'zlib', raw.subarray(12), Number(raw.readBigUInt64BE(4)));
    }
    return undefined;
  }
}

/**
 * A buffer of `size` bytes for a section read in parts: memory the process touches only where
 * parts are read. Made over a SharedArrayBuffer, which V8 does not count as external memory
 * pressure: a kernel's 160 MB .debug_info in an ordinary ArrayBuffer made V8 run a full
 * mark-compact and two scavenges at once (~20 ms of a 0.6 s `::stacks`), for memory never read.
 */
function sparseBuffer(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/** cache's value for `name`, made by `make` the first time (undefined is kept too, as null). */
function once<T>(cache: Map<string, T | null>, name: string, make: () => T | undefined): T | undefined {
  const hit = cache.get(name);
  if (hit !== undefined) return hit ?? undefined;
  const made = make();
  cache.set(name, made ?? null);
  return made;
}

/**
 * `size` bytes of `elf`'s file from `fileOffset`, read in pieces of `piece` bytes as they are
 * needed (PagedSection): a table searched at a few places (a kernel's ORC entries) without
 * reading, or touching memory for, the rest.
 */
export function readInPieces(elf: ElfFile, fileOffset: number, size: number, piece: number): PagedSection {
  return new PiecewiseSection(elf, fileOffset, size, piece);
}

/** How many bytes cstring reads alone for a name (most names are shorter; longer ones go on to pieces). */
const LONE_STRING = 64;

class PiecewiseSection implements PagedSection {
  readonly buf: Buffer;
  /** Which pieces of buf hold the file's bytes. */
  private readonly have: Uint8Array;
  /** How many bytes the file gave. */
  bytesRead = 0;

  constructor(
    private readonly elf: ElfFile,
    private readonly fileOffset: number,
    private readonly size: number,
    private readonly piece: number,
    /** How many names may be compared or decoded by small reads (DwarfSections.loneReads). */
    private readonly loneLimit = 0,
  ) {
    this.buf = sparseBuffer(size);
    this.have = new Uint8Array(Math.ceil(size / piece));
  }

  need(off: number, len: number): void {
    const piece = this.piece;
    const last = Math.min(Math.ceil(Math.min(off + len, this.size) / piece), this.have.length);
    for (let p = Math.floor(off / piece); p < last; p++) {
      if (this.have[p]) continue;
      let q = p + 1; // the run of missing pieces, in one read
      while (q < last && !this.have[q]) q++;
      const at = p * piece;
      const n = Math.min(q * piece, this.size) - at;
      const src = this.elf.source;
      if (src.readInto) src.readInto(this.fileOffset + at, this.buf, at, n);
      else src.read(this.fileOffset + at, n).copy(this.buf, at);
      this.have.fill(1, p, q);
      this.bytesRead += n;
      p = q;
    }
  }

  cstring(off: number): string {
    // A name in a piece not read yet: its first bytes alone (one small read into the pool of small
    // buffers), as isString compares them. A struct's members name places all over .debug_str: a
    // kernel's task_struct and its parts read 40 pieces, 2.6 MB of new memory, for ~400 names.
    // After loneLimit such reads and compares (a listing of many units) pieces are cheaper.
    if (!this.have[Math.floor(off / this.piece)] && this.loneReads < this.loneLimit) {
      const bytes = this.readAlone(off, Math.min(LONE_STRING, this.size - off));
      const nul = bytes.indexOf(0);
      if (nul >= 0) return bytes.toString('utf8', 0, nul);
    }
    // Piece by piece until the NUL: the bytes past the pieces read are not the file's.
    for (let from = off; from < this.size; ) {
      const to = Math.min((Math.floor(from / this.piece) + 1) * this.piece, this.size);
      this.need(from, to - from);
      const nul = this.buf.subarray(from, to).indexOf(0);
      if (nul >= 0) return this.buf.toString('utf8', off, from + nul);
      from = to;
    }
    return this.buf.toString('utf8', off, this.size);
  }

  /** Names compared or decoded by a read of their own bytes so far (isString, cstring). */
  private loneReads = 0;

  /**
   * A name lookup compares hundreds of names it does not want, spread over the whole section: a
   * name in a piece not read yet is compared by reading its few bytes alone (one small read, no
   * 64 KiB piece for each of the 30 struct names a kernel's head64.c unit has before
   * task_struct). After loneLimit such reads (a lookup sweeping many units) pieces are read.
   */
  isString(off: number, want: Buffer): boolean {
    const n = Math.min(want.length + 1, this.size - off);
    const first = Math.floor(off / this.piece);
    if (this.loneReads >= this.loneLimit) this.need(off, n);
    if (this.have[first] && this.have[Math.floor((off + n - 1) / this.piece)]) return stringAt(this.buf, off, want, this.size);
    return stringAt(this.readAlone(off, n), 0, want, n);
  }

  /** `n` bytes at `off` by a small read of their own (not a piece), counted against loneLimit. */
  private readAlone(off: number, n: number): Buffer {
    this.loneReads++;
    const src = this.elf.source;
    const bytes = Buffer.allocUnsafe(n);
    if (src.readInto) src.readInto(this.fileOffset + off, bytes, 0, n);
    else src.read(this.fileOffset + off, n).copy(bytes);
    return bytes;
  }
}

/** Whether the NUL-terminated string at `off` of `buf` (which ends at `end`: no NUL needed there) is `want`. */
function stringAt(buf: Buffer, off: number, want: Buffer, end: number): boolean {
  const stop = off + want.length;
  if (stop > end || (stop < end && buf[stop] !== 0)) return false;
  return buf.compare(want, 0, want.length, off, stop) === 0;
}

/** The largest section dbg decompresses (a sanity bound on the header's claim). */
const MAX_SECTION = 1 << 30;

/**
 * A compressed section's stream decoded into a buffer of the size its header gives, which the
 * stream must fill exactly: by native/kdump's addon (libdeflate, libzstd) when it is built
 * (`addon`, by default the loaded one), else node:zlib or fzstd. libdeflate decodes a whole
 * buffer at about twice node:zlib's speed: a libc's debug file is 10 MB of inflating.
 */
export function decompressSection(file: string, section: string, kind: 'zlib' | 'zstd', stream: Buffer, size: number, addon: KdumpAddon | null = kdumpAddon()): Buffer {
  // zlib compresses at most about 1:1032; Zstandard about 1:32768 (a 3-byte block header per 128 KiB of one byte).
  if (size > MAX_SECTION || size > (kind === 'zlib' ? stream.length * 1100 : (stream.length + 1) * 32768)) {
    throw new DbgError('corrupt', `${file}: compressed section ${section} claims ${size} bytes uncompressed from ${stream.length}, which ${kind} cannot produce`);
  }
  const out = Buffer.allocUnsafeSlow(size);
  const why = addon ? addon.decode(KDUMP_FLAG[kind], stream, stream.length, out) : decodeInJs(kind, stream, out);
  if (why !== undefined) throw new DbgError('corrupt', `${file}: compressed section ${section} does not decompress: ${why}`);
  return out;
}

/** The fallback decoders, with the addon's messages: undefined when `out` was filled exactly, else why not. */
function decodeInJs(kind: 'zlib' | 'zstd', stream: Buffer, out: Buffer): string | undefined {
  if (kind === 'zstd') {
    try {
      zstdInto(stream, out);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }
  let got: Buffer;
  try {
    // One output chunk of the size the header gives: zlib's default 16 KiB chunks cost a
    // concatenating copy and hundreds of buffers for the collector.
    got = inflateSync(stream, { maxOutputLength: Math.max(out.length, 1), chunkSize: Math.max(out.length, 64) });
  } catch (e) {
    return `zlib: ${(e as Error).message}`;
  }
  if (got.length !== out.length) return `zlib: ${got.length} bytes out, expected ${out.length}`;
  got.copy(out);
  return undefined;
}
