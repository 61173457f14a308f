/**
 * The physical memory of a kernel dump, found through its PT_LOADs' p_paddr.
 *
 * Each PT_LOAD holds the bytes of physical [p_paddr, p_paddr + p_filesz) at file offset p_offset.
 * What lies between p_filesz and p_memsz depends on who wrote the dump:
 *   - kdump / makedumpfile: zero pages left out of the file, so they read as zeros;
 *   - QEMU dump-guest-memory: NOT zeros. QEMU 7.2's paging dump (-p) clamps each segment's
 *     filesz to the first RAM block its start lies in; the rest is simply absent.
 * The opener says which (`zeroFill`).
 *
 * Segments that overlap with the same file offset for the same address (the paging dump maps
 * RAM below 640 KiB twice) are one. Segments that overlap and disagree make the overlap ambiguous:
 * reads there fail with 'corrupt', reads elsewhere work. A segment whose bytes run past the end
 * of the file (a truncated dump) is readable up to the end of the file; past it reads fail with
 * 'corrupt' and say the dump is truncated.
 *
 * Physical addresses are below 2^52, so the hot path works in numbers, not bigints.
 */

import type { ByteSource } from '../../common/byte-source.js';
import { DbgError } from '../../common/errors.js';
import { PT_LOAD, type ProgramHeader } from '../../symbols/elf-file.js';

interface Range {
  readonly start: number;
  /** End of the bytes the file holds (exclusive), after truncation. */
  readonly fileEnd: number;
  /** End of the bytes p_filesz promises. */
  readonly filesEnd: number;
  /** End of p_memsz; between filesEnd and memEnd: zeros when zeroFill, else absent. */
  readonly memEnd: number;
  /** File offset minus physical address. */
  readonly delta: number;
  readonly phdr: number;
}

interface Conflict {
  readonly start: number;
  readonly end: number;
  readonly a: number;
  readonly b: number;
}

const MAX_PHYS = 2 ** 52;

export class KernelPhysMap {
  private readonly ranges: Range[] = [];
  private readonly conflicts: Conflict[] = [];
  readonly warnings: string[] = [];
  private last: Range | undefined;
  private readonly tables = new Map<number, Uint32Array>();
  private readonly littleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

  constructor(
    private readonly source: ByteSource,
    phdrs: readonly ProgramHeader[],
    private readonly zeroFill: boolean,
    private readonly dumpName: string,
  ) {
    for (const p of phdrs) {
      if (p.type !== PT_LOAD || (p.filesz === 0 && p.memsz === 0n)) continue;
      const start = Number(p.paddr);
      const memsz = Number(p.memsz);
      if (p.paddr >= BigInt(MAX_PHYS) || start + Math.max(memsz, p.filesz) > MAX_PHYS) {
        this.warnings.push(`PT_LOAD ${p.index}: physical range 0x${p.paddr.toString(16)}+0x${p.memsz.toString(16)} is beyond 2^52; ignored`);
        continue;
      }
      const filesEnd = start + p.filesz;
      const avail = Math.max(0, Math.min(p.filesz, source.size - p.offset));
      if (avail < p.filesz) {
        this.warnings.push(
          `PT_LOAD ${p.index} (phys 0x${start.toString(16)}-0x${filesEnd.toString(16)}) needs file bytes up to 0x${(p.offset + p.filesz).toString(16)} but the file ends at 0x${source.size.toString(16)}: the dump is truncated`,
        );
      }
      this.ranges.push({ start, fileEnd: start + avail, filesEnd, memEnd: Math.max(filesEnd, start + memsz), delta: p.offset - start, phdr: p.index });
    }
    this.ranges.sort((a, b) => a.start - b.start);
    for (let i = 0; i < this.ranges.length; i++) {
      for (let j = i + 1; j < this.ranges.length; j++) {
        const a = this.ranges[i]!;
        const b = this.ranges[j]!;
        if (b.start >= this.extent(a)) break;
        const start = b.start;
        const end = Math.min(this.extent(a), this.extent(b));
        if (a.delta === b.delta) continue;
        this.conflicts.push({ start, end, a: a.phdr, b: b.phdr });
        this.warnings.push(
          `PT_LOAD ${a.phdr} and PT_LOAD ${b.phdr} both claim physical 0x${start.toString(16)}-0x${end.toString(16)} with different file offsets; reads there fail`,
        );
      }
    }
  }

  /** The end of what a range can answer for: file bytes, plus zeros when zeroFill. */
  private extent(r: Range): number {
    return this.zeroFill ? r.memEnd : r.filesEnd;
  }

  /** Physical ranges with bytes (merged where they touch), for physicalRanges(). */
  regions(): { start: bigint; end: bigint }[] {
    const out: { start: number; end: number }[] = [];
    for (const r of this.ranges) {
      const end = this.extent(r);
      const prev = out[out.length - 1];
      if (prev && r.start <= prev.end) prev.end = Math.max(prev.end, end);
      else out.push({ start: r.start, end });
    }
    return out.map((r) => ({ start: BigInt(r.start), end: BigInt(r.end) }));
  }

  private find(a: number): Range | undefined {
    const l = this.last;
    if (l && a >= l.start && a < this.extent(l)) return l;
    const rs = this.ranges;
    let lo = 0;
    let hi = rs.length - 1;
    let best: Range | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (rs[mid]!.start <= a) {
        best = rs[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (best && a < this.extent(best)) return (this.last = best);
    // An earlier, longer range may still cover `a` (ranges can nest).
    for (const r of rs) if (r.start <= a && a < this.extent(r)) return (this.last = r);
    return undefined;
  }

  private conflictAt(a: number, end: number): Conflict | undefined {
    for (const c of this.conflicts) if (a < c.end && end > c.start) return c;
    return undefined;
  }

  /** True when every byte of [addr, addr+length) can be read. */
  has(addr: bigint, length = 1): boolean {
    try {
      this.read(addr, length);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * `length` bytes at physical `addr`. Throws DbgError 'unmapped' naming the first physical
   * address the dump does not hold, or 'corrupt' for truncated / ambiguous parts.
   */
  read(addr: bigint, length: number): Buffer {
    if (addr < 0n || addr + BigInt(length) > BigInt(MAX_PHYS)) throw this.unmapped(addr, length, addr);
    const a = Number(addr);
    const r = this.find(a);
    if (r && a + length <= r.fileEnd && this.conflicts.length === 0) return this.source.read(a + r.delta, length);
    const out = Buffer.alloc(length);
    let pos = a;
    const end = a + length;
    while (pos < end) {
      const c = this.conflictAt(pos, pos + 1);
      if (c) {
        throw new DbgError(
          'corrupt',
          `read of ${length} bytes at physical 0x${a.toString(16)} failed: ${this.dumpName} has two PT_LOADs (${c.a} and ${c.b}) for physical 0x${pos.toString(16)} that disagree`,
        );
      }
      const seg = this.find(pos);
      if (!seg) throw this.unmapped(addr, length, BigInt(pos));
      let n = Math.min(end, this.extent(seg)) - pos;
      const nextConflict = this.conflicts.find((k) => k.start > pos && k.start < pos + n);
      if (nextConflict) n = nextConflict.start - pos;
      if (pos < seg.fileEnd) {
        const take = Math.min(n, seg.fileEnd - pos);
        this.source.read(pos + seg.delta, take).copy(out, pos - a);
        pos += take;
        continue;
      }
      if (pos < seg.filesEnd) {
        throw new DbgError(
          'corrupt',
          `read of ${length} bytes at physical 0x${a.toString(16)} failed: physical 0x${pos.toString(16)} would be at file offset 0x${(pos + seg.delta).toString(16)}, past the end of ${this.dumpName} (size 0x${this.source.size.toString(16)}); the dump is truncated`,
        );
      }
      pos += n; // zero-filled tail (p_filesz < p_memsz in a kdump)
    }
    return out;
  }

  readU64(addr: bigint): bigint {
    return this.read(addr, 8).readBigUInt64LE(0);
  }

  /**
   * The 4 KiB page at physical `page` as 1024 u32 words, or undefined when any of it is missing:
   * the page walker's accelerator (X86_64Paging's `tablePage`). Up to 8 MiB of pages are kept.
   */
  tablePage(page: number): Uint32Array | undefined {
    const hit = this.tables.get(page);
    if (hit) return hit;
    let b: Buffer;
    try {
      b = this.read(BigInt(page), 4096);
    } catch {
      return undefined;
    }
    const t = new Uint32Array(1024);
    Buffer.from(t.buffer).set(b);
    if (!this.littleEndianHost) t.forEach((v, i) => (t[i] = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)));
    if (this.tables.size >= 2048) this.tables.clear();
    this.tables.set(page, t);
    return t;
  }

  private unmapped(addr: bigint, length: number, missing: bigint): DbgError {
    const near = this.nearest(missing);
    return new DbgError(
      'unmapped',
      `read of ${length} bytes at physical 0x${addr.toString(16)} failed: physical 0x${missing.toString(16)} is not in ${this.dumpName}${near}`,
    );
  }

  private nearest(addr: bigint): string {
    const regs = this.regions();
    if (regs.length === 0) return ' (it holds no physical memory)';
    let best = regs[0]!;
    let dist = -1n;
    for (const r of regs) {
      const d = addr < r.start ? r.start - addr : addr >= r.end ? addr - r.end + 1n : 0n;
      if (dist < 0n || d < dist) {
        best = r;
        dist = d;
      }
    }
    return ` (nearest 0x${best.start.toString(16)}-0x${(best.end - 1n).toString(16)})`;
  }
}
