/**
 * The compact symbol table must answer exactly as SymbolTable does: same symbol, offset and
 * "inside" for every address, and the same symbol for every name, on real files (libc's .dynsym,
 * ld.so, a gcc -O0 program's .symtab), at a user-space bias and at a kernel one (addresses past
 * 2^53, a bias that carries into the high word). Each suite runs twice: with the whole-table
 * passes in native/symtab, and in JavaScript (the fallback when the addon is not built).
 */

import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { SymbolTable } from '../../src/symbols/symbol-table.js';
import { CompactSymbolTable, symbolTableFor } from '../../src/symbols/compact-symbol-table.js';
import { symtabAddon } from '../../src/common/symtab-addon.js';
import { debuggee } from '../helpers/debuggee.js';

describe('native/symtab', () => {
  it('is built, and refuses arguments that are not byte arrays', () => {
    const addon = symtabAddon();
    expect(addon).not.toBeNull();
    expect(() => addon!.order([] as unknown as Uint8Array, Buffer.alloc(1), 0, 0)).toThrow(/^order\(raw, strings, biasHi, biasLo\): raw or strings is not a Uint8Array/);
    expect(() => addon!.badName(Buffer.alloc(24), 'x' as unknown as number)).toThrow(/^badName\(raw, stringsLength\)/);
  });

  it('maps a range of a file as a read gives it, still readable once the file is closed; null for a descriptor that is not open', () => {
    const file = '/usr/lib/x86_64-linux-gnu/libc.so.6';
    const want = readFileSync(file).subarray(5000, 5000 + 70000);
    const fd = openSync(file, 'r');
    const mapped = symtabAddon()!.map(fd, 5000, 70000);
    closeSync(fd);
    expect(mapped?.equals(want)).toBe(true);
    expect(symtabAddon()!.map(fd, 0, 4096)).toBeNull();
    expect(() => symtabAddon()!.map(-1, 0, 1)).toThrow(/^map\(fd, offset, length\): a descriptor, an offset and a positive length$/);
    expect(() => symtabAddon()!.map(0, 0, 0)).toThrow(/^map\(fd, offset, length\)/);
  });
});

/** The suites below, once with native/symtab and once without. */
function bothWays(body: () => void): void {
  for (const native of [true, false]) {
    describe(native ? 'with native/symtab' : 'in JavaScript', () => {
      const was = CompactSymbolTable.native;
      beforeAll(() => void (CompactSymbolTable.native = native));
      afterAll(() => void (CompactSymbolTable.native = was));
      body();
    });
  }
}

let files: string[];
beforeAll(async () => {
  const d = await debuggee('threads', { kernelCore: true });
  files = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', d.exe];
});

bothWays(() => {
  describe('compact symbol table', () => {
    it('resolves every address as SymbolTable does', () => {
      for (const f of files) {
        const elf = ElfFile.open(f);
        // The second bias makes low words carry into the high word part-way through the file.
        try { for (const bias of [0x7f12_3456_0000n, 0xffff_fffe_ffff_0000n]) {
          const full = new SymbolTable('m', elf.symbols(), bias);
          const compact = symbolTableFor('m', elf, bias);
          expect(compact.constructor.name).toBe('CompactSymbolTable'); // the fast path, not a fallback
          expect(compact.size).toBe(full.size);
          const probes = new Set<bigint>([0n, bias - 1n, bias, 1n << 60n]);
          for (const s of full.all()) for (const d of [-1n, 0n, 1n, s.size > 0n ? s.size - 1n : 7n, s.size, s.size + 1n]) probes.add(s.addr + d);
          let checked = 0;
          for (const a of probes) {
            expect([f, a, compact.resolve(a)]).toEqual([f, a, full.resolve(a)]);
            checked++;
          }
          expect(checked).toBeGreaterThan(100);
          // Every name, through the byte-hash index (a fresh table: all() below builds the full one).
          const fresh = symbolTableFor('m', elf, bias);
          for (const s of full.all()) expect([f, s.name, fresh.lookup(s.name)]).toEqual([f, s.name, full.lookup(s.name)]);
          for (const absent of ['', 'no_such_symbol', 'mai', 'main ', 'mainx']) expect(fresh.lookup(absent)).toEqual(full.lookup(absent));
          expect(compact.all()).toEqual(full.all());
          // The first pass came from address buckets (where one high word holds every address); now from the sorted index.
          for (const a of probes) expect([f, a, compact.resolve(a)]).toEqual([f, a, full.resolve(a)]);
          expectRowsMatch(symbolTableFor('m', elf, bias), full);
        } } finally {
          elf.close();
        }
      }
    });
  });
});

/** rows() lists what all() holds, in its order, without bigints. */
function expectRowsMatch(table: SymbolTable, full: SymbolTable): void {
  const rows = [];
  for (const r of table.rows()) rows.push({ ...r }); // one row object, changed for each symbol
  const want = full.all().map((s) => {
    const a = BigInt.asUintN(64, s.addr);
    return { name: s.name, addrHi: Number(a >> 32n), addrLo: Number(a & 0xffff_ffffn), sizeHi: Number(s.size >> 32n), sizeLo: Number(s.size & 0xffff_ffffn), kind: s.kind, global: s.global };
  });
  expect(rows).toEqual(want);
}

bothWays(() => {
  describe('compact symbol table on the cases that decide ties', () => {
    // gcc from assembly: aliases of equal rank at one address (gdb shows the greatest name), a
    // local and a global of one name (a lookup takes the global, even when the local comes first),
    // a name that is the tail of another (the linker may share their bytes), sizeless labels,
    // absolute symbols, and more entries than the first few lookups scan before the hash index.
    let dir: string;
    let exe: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'dbg-symtab-'));
      const lines = ['.text', '.globl _start', '_start:', ' ret'];
      const fn = (name: string, global: boolean, size = 1) => [...(global ? [`.globl ${name}`] : []), `.type ${name},@function`, `${name}:`, ' nop', `.size ${name},${size}`];
      lines.push('.globl write', '.globl __write', '.type write,@function', '.type __write,@function', 'write:', '__write:', ' nop', '.size write,1', '.size __write,1');
      // Aliases of which one name is not ASCII: JavaScript's string order decides (native/symtab leaves the run to it).
      lines.push('.globl read', '.globl "r\u00e9ad"', '.type read,@function', '.type "r\u00e9ad",@function', 'read:', '"r\u00e9ad":', ' nop', '.size read,1', '.size "r\u00e9ad",1');
      lines.push(...fn('dup', false), ...fn('tail_of_this', true), ...fn('of_this', true), 'label_only:', ' nop', '.globl absval', '.set absval, 0x1234');
      for (let i = 0; i < 2000; i++) lines.push(...fn(`f${i}`, i % 3 !== 0, 1 + (i % 4)));
      // Absolute symbols of 300 high words (the address buckets' groups past the 254 numbered in a byte), two per word.
      for (let i = 1; i <= 300; i++) lines.push(`.globl hi${i}a`, `.set hi${i}a, 0x${((BigInt(i) << 32n) | 0x10n).toString(16)}`, `.set hi${i}b, 0x${((BigInt(i) << 32n) | 0x80000000n).toString(16)}`);
      writeFileSync(join(dir, 'a.s'), lines.join('\n') + '\n');
      writeFileSync(join(dir, 'b.s'), ['.text', ...fn('dup', true)].join('\n') + '\n');
      exe = join(dir, 'ties');
      execFileSync('gcc', ['-nostdlib', '-no-pie', '-o', exe, join(dir, 'a.s'), join(dir, 'b.s')]);
      return () => rmSync(dir, { recursive: true, force: true });
    });

    it('answers as SymbolTable does, by name (before and after the hash index), by address and in listings', () => {
      const elf = ElfFile.open(exe);
      const limit = CompactSymbolTable.keySortLimit;
      try {
        // Both sorts: the key sort (tables under 2^18 symbols) and the radix sort (bigger ones).
        for (const [bias, sortLimit] of [[0n, limit], [0x5555_0000_0000n, limit], [0n, 0], [0x5555_0000_0000n, 0]] as const) {
          CompactSymbolTable.keySortLimit = sortLimit;
          const full = new SymbolTable('m', elf.symbols(), bias);
          const compact = symbolTableFor('m', elf, bias);
          expect(compact.size).toBe(full.size);
          const names = ['write', '__write', 'read', 'r\u00e9ad', 'dup', 'of_this', 'tail_of_this', 'absval', 'label_only', 'f1999', 'f0', 'nope', 'this', ''];
          for (const name of names) expect([name, compact.lookup(name)]).toEqual([name, full.lookup(name)]);
          // The same through the hash index, built at the first lookup when no scan is allowed.
          const scanLimit = CompactSymbolTable.scanLimit;
          CompactSymbolTable.scanLimit = 0;
          try {
            const indexed = symbolTableFor('m', elf, bias);
            for (const name of names) expect([name, indexed.lookup(name)]).toEqual([name, full.lookup(name)]);
          } finally {
            CompactSymbolTable.scanLimit = scanLimit;
          }
          expect(compact.lookup('dup')?.global).toBe(true);
          for (const s of full.all()) for (const d of [-1n, 0n, 1n, 2n]) expect(compact.resolve(s.addr + d)).toEqual(full.resolve(s.addr + d));
          expect(compact.resolve(full.lookup('write')!.addr)?.sym.name).toBe('write');
          expectRowsMatch(symbolTableFor('m', elf, bias), full);
          expect(compact.all()).toEqual(full.all());
          // The lookups above came from address buckets (at bias 0, one high word); now from the sorted index.
          for (const s of full.all()) for (const d of [-1n, 0n, 1n, 2n]) expect(compact.resolve(s.addr + d)).toEqual(full.resolve(s.addr + d));
        }
      } finally {
        CompactSymbolTable.keySortLimit = limit;
        elf.close();
      }
    });
  });
});

bothWays(() => {
  describe('compact symbol table on a name outside its string table', () => {
    it('every question (by name, by address, size, listing) gives the plain reader one-line error', () => {
      const dir = mkdtempSync(join(tmpdir(), 'dbg-badsym-'));
      try {
        const bad = join(dir, 'ld.so');
        const good = readFileSync('/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
        const elf = ElfFile.open('/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
        const sec = elf.sections().find((s) => s.name === '.dynsym')!;
        elf.close();
        good.writeUInt32LE(0x7fffffff, sec.offset + 24 * 5); // symbol 5's st_name
        writeFileSync(bad, good);
        for (const ask of [(t: SymbolTable) => t.lookup('_dl_catch_exception'), (t: SymbolTable) => t.resolve(0x1000n), (t: SymbolTable) => t.size, (t: SymbolTable) => t.all()]) {
          const e = ElfFile.open(bad);
          try {
            expect(() => ask(symbolTableFor('m', e, 0n))).toThrow(/symbol 5 of \.dynsym has name offset 0x7fffffff outside its string table/);
          } finally {
            e.close();
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
