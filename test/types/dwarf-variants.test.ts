/**
 * The DWARF reader on what gcc 12 emits under other flags — DWARF 2, 4 and 5, type units in
 * .debug_types (v4) and in .debug_info (v5), zlib- and zstd-compressed sections — must give the same
 * types as the default build; and on garbled DWARF it must fail with one-line DbgErrors, never
 * crash or hang, while symbols keep working.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { CaptureOutput, type Session } from '../../src/mdb/session.js';
import { kdumpAddon } from '../../src/common/kdump-addon.js';
import { DwarfInfo } from '../../src/symbols/dwarf/dwarf-info.js';
import { decompressSection, DwarfSections } from '../../src/symbols/dwarf/dwarf-sections.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { openTarget } from '../../src/targets/open-target.js';
import { fixturesSrc } from '../helpers/debuggee.js';
import { run, sessionOn, tempDir } from '../mdb/helpers.js';

const questions = ['::sizeof struct item', '::offsetof struct item bits.tail', '::offsetof struct item as_float', '::offsetof struct item grid[1][2]', '::print -t struct item', '::print -t struct bits', 'both_val::print', '::sizeof union both', '::enum enum color'];

let tmp: ReturnType<typeof tempDir>;
const built = new Map<string, string>();

function build(name: string, flags: string[]): string {
  const exe = join(tmp.dir, name);
  execFileSync('gcc', ['-O0', '-g', ...flags, '-o', exe, join(fixturesSrc, 'types.c')], { stdio: 'pipe' });
  built.set(name, exe);
  return exe;
}

async function answers(exe: string): Promise<string[][]> {
  const s = sessionOn(openTarget(exe, {}));
  try {
    const out: string[][] = [];
    for (const q of questions) out.push(await run(s, q));
    return out;
  } finally {
    s.target.close();
  }
}

beforeAll(() => {
  tmp = tempDir('dbg-dwarf-');
  build('default', []);
  build('dwarf4', ['-gdwarf-4']);
  build('dwarf2', ['-gdwarf-2']);
  build('types4', ['-gdwarf-4', '-fdebug-types-section']);
  build('types5', ['-gdwarf-5', '-fdebug-types-section']);
  build('zlib', ['-gz=zlib']);
  // gcc 12 has no -gz=zstd; binutils' objcopy compresses the sections of a default build.
  const zstd = join(tmp.dir, 'zstd');
  execFileSync('objcopy', ['--compress-debug-sections=zstd', built.get('default')!, zstd], { stdio: 'pipe' });
  built.set('zstd', zstd);
});
afterAll(() => tmp?.cleanup());

describe('gcc 12 DWARF variants give the same types', () => {
  it('the variants really are what their flags say', () => {
    const secs = (n: string) => {
      const e = ElfFile.open(built.get(n)!);
      try {
        return e.sections().map((s) => ({ name: s.name, compressed: (s.flags & 0x800n) !== 0n }));
      } finally {
        e.close();
      }
    };
    expect(secs('types4').some((s) => s.name === '.debug_types')).toBe(true);
    expect(secs('zlib').find((s) => s.name === '.debug_info')!.compressed).toBe(true);
    expect(secs('zstd').find((s) => s.name === '.debug_info')!.compressed).toBe(true);
    // ELFCOMPRESS_ZSTD (2) in the compression header
    const z = ElfFile.open(built.get('zstd')!);
    try {
      expect(z.sectionData(z.section('.debug_info')!).readUInt32LE(0)).toBe(2);
    } finally {
      z.close();
    }
    expect(readFileSync(built.get('dwarf4')!).includes(Buffer.from('.debug_str_offsets'))).toBe(false);
  });

  it('DWARF 2, 4, 5 with and without type units, and zlib- or zstd-compressed, answer alike', async () => {
    const base = await answers(built.get('default')!);
    expect(base[0]).toEqual(['sizeof (struct item) = 0x78']);
    expect(base[4]).toContain('    int [2][3] grid');
    for (const v of ['dwarf4', 'dwarf2', 'types4', 'types5', 'zlib', 'zstd']) expect(await answers(built.get(v)!), v).toEqual(base);
  });

  it('native/kdump (libdeflate, libzstd) and the JavaScript decoders give every compressed section the same bytes', () => {
    expect(kdumpAddon(), 'native/kdump is built by setup').not.toBeNull();
    let sections = 0;
    for (const v of ['zlib', 'zstd']) {
      const elf = ElfFile.open(built.get(v)!);
      try {
        for (const sec of elf.sections().filter((x) => (x.flags & 0x800n) !== 0n)) {
          const raw = elf.sectionData(sec);
          const kind = raw.readUInt32LE(0) === 1 ? 'zlib' : 'zstd';
          const size = Number(raw.readBigUInt64LE(8));
          const native = decompressSection(v, sec.name, kind, raw.subarray(24), size);
          expect(native.length).toBe(size);
          expect(native.equals(decompressSection(v, sec.name, kind, raw.subarray(24), size, null)), `${v} ${sec.name}`).toBe(true);
          sections++;
        }
      } finally {
        elf.close();
      }
    }
    expect(sections).toBeGreaterThanOrEqual(8);
  });
});

describe('sections read piece by piece', () => {
  it('every string and line program reads the same in 7-byte pieces as whole, and only the pieces asked for are read', async () => {
    const base = await answers(built.get('default')!);
    const place = async (exe: string) => {
      const s = sessionOn(openTarget(exe, {}));
      try {
        return await run(s, 'main::dis -s');
      } finally {
        s.target.close();
      }
    };
    const lines = await place(built.get('default')!);
    expect(lines.join('\n')).toMatch(/types\.c:\d+/);
    const saved = [DwarfSections.pagedMin, DwarfSections.piece, DwarfInfo.abbrevWindow, DwarfSections.loneReads] as const;
    // Abbreviation tables read from 5 bytes on, as far as each goes; 256 names by small reads.
    [DwarfSections.pagedMin, DwarfSections.piece, DwarfInfo.abbrevWindow, DwarfSections.loneReads] = [1, 7, 5, 256];
    try {
      for (const v of ['default', 'dwarf4', 'dwarf2', 'types4', 'types5']) expect(await answers(built.get(v)!), v).toEqual(base);
      expect(await place(built.get('default')!)).toEqual(lines);
      const elf = ElfFile.open(built.get('default')!);
      try {
        const whole = elf.sectionData(elf.section('.debug_str')!);
        const paged = new DwarfSections(elf).paged('.debug_str')!;
        paged.cstring(whole.length - 1); // the last string alone: its few bytes, no piece
        expect(paged.bytesRead).toBe(0);
        // A name compared or decoded where it lies reads no piece, its few bytes alone: for the
        // first 256 (loneReads), then pieces (a lookup sweeping many units).
        const fresh = new DwarfSections(elf).paged('.debug_str')!;
        let compared = 0;
        for (let off = 0; off < whole.length; off = whole.indexOf(0, off) + 1) {
          const str = whole.subarray(off, whole.indexOf(0, off));
          expect(fresh.isString(off, str)).toBe(true);
          expect(fresh.isString(off, Buffer.concat([str, Buffer.from('x')]))).toBe(false);
          if (str.length > 0) expect(fresh.isString(off, str.subarray(0, str.length - 1))).toBe(false);
          compared += str.length > 0 ? 3 : 2;
          if (compared <= 256) expect(fresh.bytesRead).toBe(0);
        }
        expect(compared).toBeGreaterThan(256);
        expect(fresh.bytesRead).toBeGreaterThan(0);
        // Names under 64 bytes (a longer one goes on to pieces: its first 64 hold no NUL).
        const short = new DwarfSections(elf).paged('.debug_str')!;
        let decoded = 0;
        for (let off = 0; off < whole.length; off = whole.indexOf(0, off) + 1) {
          if (whole.indexOf(0, off) - off >= 64) continue;
          expect(short.cstring(off)).toBe(whole.toString('utf8', off, whole.indexOf(0, off)));
          decoded++;
        }
        expect(decoded).toBeGreaterThan(50);
        expect(short.bytesRead).toBe(0);
        // Past the limit, pieces: every name decoded the same, and every piece read at most once.
        DwarfSections.loneReads = 16;
        const limited = new DwarfSections(elf).paged('.debug_str')!;
        for (const sec of [paged, limited]) {
          for (let off = 0; off < whole.length; off = whole.indexOf(0, off) + 1) expect(sec.cstring(off)).toBe(whole.toString('utf8', off, whole.indexOf(0, off)));
        }
        expect(limited.bytesRead).toBeGreaterThan(whole.length / 2);
        expect(limited.bytesRead).toBeLessThanOrEqual(whole.length);
        for (let off = 0; off < whole.length; off = whole.indexOf(0, off) + 1) expect(paged.isString(off, whole.subarray(off, whole.indexOf(0, off)))).toBe(true);
      } finally {
        elf.close();
      }
    } finally {
      [DwarfSections.pagedMin, DwarfSections.piece, DwarfInfo.abbrevWindow, DwarfSections.loneReads] = saved;
    }
  });
});

/** A small seeded PRNG (xorshift32), so a failure names a seed that reproduces it. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('garbled DWARF', () => {
  it('mutated .debug_info/.debug_abbrev/.debug_str give DbgErrors or answers, never a crash; symbols still work', async () => {
    const exe = built.get('dwarf4')!;
    const bytes = readFileSync(exe);
    const elf = ElfFile.open(exe);
    const targets = ['.debug_info', '.debug_abbrev', '.debug_str'].map((n) => elf.section(n)!);
    elf.close();
    const qs = ['::sizeof struct item', '::print -t struct item', 'items::print', 'both_val::print', '::offsetof struct item name', '::enum enum color'];
    let errors = 0;
    let answered = 0;
    for (let seed = 1; seed <= 120; seed++) {
      const rnd = prng(seed);
      const b = Buffer.from(bytes);
      const sec = targets[seed % targets.length]!;
      const n = 1 + Math.floor(rnd() * 8);
      for (let k = 0; k < n; k++) b[sec.offset + Math.floor(rnd() * sec.size)] = Math.floor(rnd() * 256);
      const file = join(tmp.dir, `mut-${seed}`);
      writeFileSync(file, b);
      const s: Session = sessionOn(openTarget(file, {}));
      try {
        for (const q of qs) {
          try {
            await s.execute(q, new CaptureOutput(false));
            answered++;
          } catch (e) {
            if (!(e instanceof DbgError)) throw new Error(`seed ${seed}, ${sec.name}, "${q}": ${(e as Error).stack}`);
            expect(e.message.split('\n').length, `seed ${seed}: ${e.message}`).toBe(1);
            errors++;
          }
        }
        // The symbol table does not depend on DWARF: it still answers.
        expect((await run(s, '::nm main')).length).toBe(2);
      } finally {
        s.target.close();
      }
    }
    expect(answered).toBeGreaterThan(0);
    expect(errors).toBeGreaterThan(0);
  });

  it('a garbled zstd-compressed section is named in one line; symbols still work', async () => {
    const exe = built.get('zstd')!;
    const elf = ElfFile.open(exe);
    const info = elf.section('.debug_info')!;
    elf.close();
    const b = Buffer.from(readFileSync(exe));
    b.fill(0xff, info.offset + 24, info.offset + 40); // the frame header after the 24-byte Elf64_Chdr
    const bad = join(tmp.dir, 'badzstd');
    writeFileSync(bad, b);
    const s = sessionOn(openTarget(bad, {}));
    try {
      await expect(s.execute('::sizeof struct item', new CaptureOutput(false))).rejects.toThrow(/\/badzstd: compressed section \.debug_info does not decompress: zstd: Unknown frame descriptor$/);
      expect((await run(s, '::nm main')).length).toBe(2);
    } finally {
      s.target.close();
    }
    const raw = b.subarray(info.offset + 24, info.offset + info.size);
    expect(() => decompressSection('badzstd', '.debug_info', 'zstd', raw, 1000, null)).toThrow(/^badzstd: compressed section \.debug_info does not decompress: zstd: invalid zstd data$/);
  });

  it('a garbled or short zlib-compressed section is named in one line, by either decoder; symbols still work', async () => {
    const exe = built.get('zlib')!;
    const elf = ElfFile.open(exe);
    const info = elf.section('.debug_info')!;
    const size = Number(elf.sectionData(info).readBigUInt64LE(8));
    elf.close();
    const b = Buffer.from(readFileSync(exe));
    b.fill(0xff, info.offset + 24, info.offset + 40); // the zlib header and first block after the Elf64_Chdr
    const bad = join(tmp.dir, 'badzlib');
    writeFileSync(bad, b);
    const s = sessionOn(openTarget(bad, {}));
    try {
      await expect(s.execute('::sizeof struct item', new CaptureOutput(false))).rejects.toThrow(/\/badzlib: compressed section \.debug_info does not decompress: zlib: invalid data \(a bad header, block, or checksum\)$/);
      expect((await run(s, '::nm main')).length).toBe(2);
    } finally {
      s.target.close();
    }
    const raw = b.subarray(info.offset + 24, info.offset + info.size);
    expect(() => decompressSection('badzlib', '.debug_info', 'zlib', raw, size, null)).toThrow(/^badzlib: compressed section \.debug_info does not decompress: zlib: incorrect header check$/);
    // A header that claims more (or fewer) bytes than the stream holds.
    const good = Buffer.from(readFileSync(exe)).subarray(info.offset + 24, info.offset + info.size);
    for (const addon of [kdumpAddon(), null]) {
      expect(() => decompressSection('z', '.debug_info', 'zlib', good, size + 1, addon)).toThrow(new RegExp(`^z: compressed section \\.debug_info does not decompress: zlib: ${size} bytes out, expected ${size + 1}$`));
    }
    expect(() => decompressSection('z', '.debug_info', 'zlib', good, size - 1)).toThrow(/^z: compressed section \.debug_info does not decompress: zlib: the stream holds more than \d+ bytes$/);
    expect(() => decompressSection('z', '.debug_info', 'zlib', good, size - 1, null)).toThrow(/^z: compressed section \.debug_info does not decompress: zlib: /);
    expect(() => decompressSection('z', '.debug_info', 'zlib', good, good.length * 2000)).toThrow(/^z: compressed section \.debug_info claims \d+ bytes uncompressed from \d+, which zlib cannot produce$/);
  });

  it('a truncated unit and an unknown DWARF version are named in one line', async () => {
    const exe = built.get('dwarf4')!;
    const elf = ElfFile.open(exe);
    const info = elf.section('.debug_info')!;
    elf.close();
    const b = Buffer.from(readFileSync(exe));
    b.writeUInt16LE(9, info.offset + 4); // the first unit's version
    const bad = join(tmp.dir, 'badversion');
    writeFileSync(bad, b);
    const s = sessionOn(openTarget(bad, {}));
    try {
      await expect(s.execute('::sizeof struct item', new CaptureOutput(false))).rejects.toThrow(/badversion: unit at 0x0 has DWARF version 9 \(dbg reads 2 to 5\)$/);
    } finally {
      s.target.close();
    }
    const c = Buffer.from(readFileSync(exe));
    c.writeUInt32LE(0x7fff0000, info.offset); // the first unit's length
    const long = join(tmp.dir, 'longunit');
    writeFileSync(long, c);
    const s2 = sessionOn(openTarget(long, {}));
    try {
      await expect(s2.execute('::sizeof struct item', new CaptureOutput(false))).rejects.toThrow(/longunit: unit at 0x0 of \.debug_info claims 0x7fff0000 bytes, past the end of the section/);
    } finally {
      s2.target.close();
    }
  });
});
