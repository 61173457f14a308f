/**
 * The compact symbol table must answer exactly as SymbolTable does: same symbol, offset and
 * "inside" for every address, on real files (libc's .dynsym, ld.so, a gcc -O0 program's .symtab).
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { SymbolTable } from '../../src/symbols/symbol-table.js';
import { symbolTableFor } from '../../src/targets/elfcore/process-core-symbols.js';
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
      try {
        const bias = 0x7f12_3456_0000n;
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
        for (const s of full.all().slice(0, 50)) expect(compact.lookup(s.name)).toEqual(full.lookup(s.name));
        expect(compact.all()).toEqual(full.all());
      } finally {
        elf.close();
      }
    }
  });
});
