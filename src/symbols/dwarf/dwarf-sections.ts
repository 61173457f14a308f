import { inflateSync } from 'node:zlib';
import { DbgError } from '../../common/errors.js';
import { KDUMP_FLAG, kdumpAddon, type KdumpAddon } from '../../common/kdump-addon.js';
import { zstdInto } from '../../common/zstd.js';
import type { ElfFile } from '../elf-file.js';

const SHF_COMPRESSED = 0x800n;
/** Sections from this size on are read on demand (DwarfSections.lazy). */
const LAZY_MIN = 1 << 20;

export interface LazySection {
  readonly buf: Buffer;
  /** Makes `len` bytes at section offset `off` valid in buf. */
  fill(off: number, len: number): void;
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
    const hit = this.lazies.get(name);
    if (hit !== undefined) return hit ?? undefined;
    const sec = this.elf.section(name);
    let l: LazySection | undefined;
    if (sec && (sec.flags & SHF_COMPRESSED) === 0n && sec.size >= LAZY_MIN) {
      if (sec.offset + sec.size > this.elf.source.size) this.elf.sectionData(sec); // throws the ELF reader's message
      const buf = Buffer.allocUnsafeSlow(sec.size);
      const src = this.elf.source;
      l = {
        buf,
        fill: (off, len) => {
          const n = Math.min(len, sec.size - off);
          if (src.readInto) src.readInto(sec.offset + off, buf, off, n);
          else src.read(sec.offset + off, n).copy(buf, off);
        },
      };
    } else {
      const buf = this.get(name);
      l = buf ? { buf, fill: () => {} } : undefined;
    }
    this.lazies.set(name, l ?? null);
    return l;
  }

  /** The bytes of `.debug_<name>` (name given with its dot), decompressed; undefined when absent. */
  get(name: string): Buffer | undefined {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit ?? undefined;
    const data = this.load(name);
    this.cache.set(name, data ?? null);
    return data;
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
