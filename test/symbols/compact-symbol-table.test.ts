/**
 * The compact symbol table must answer exactly as SymbolTable does: same symbol, offset and
 * "inside" for every address, and the same symbol for every name, on real files (libc's .dynsym,
 * ld.so, a gcc -O0 program's .symtab), at a user-space bias and at a kernel one (addresses past
 * 2^53, a bias that carries into the high word).
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { SymbolTable } from '../../src/symbols/symbol-table.js';
import { symbolTableFor } from '../../src/symbols/compact-symbol-table.js';
import { debuggee } from '../helpers/debuggee.js';

let files: string[];
beforeAll(async () => {
  const d = await debuggee('threads', { kernelCore: true });
  files = ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', d.exe];
});

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
      } } finally {
        elf.close();
      }
    }
  });
});
