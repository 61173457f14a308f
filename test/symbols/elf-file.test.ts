import { describe, expect, it } from 'vitest';
import { BufferByteSource } from '../../src/common/byte-source.js';
import { ElfFile, PT_LOAD } from '../../src/symbols/elf-file.js';
import { SymbolTable } from '../../src/symbols/symbol-table.js';
import { qemuSample } from '../helpers/repo.js';

describe('ElfFile on the QEMU fixture kernel', () => {
  const elf = ElfFile.open(qemuSample('kernel.elf'));

  it('reads the header and the four PT_LOADs', () => {
    expect(elf.header.class).toBe(64);
    expect(elf.header.entry).toBe(0x200020n);
    const loads = elf.programHeaders().filter((p) => p.type === PT_LOAD);
    expect(loads.map((p) => p.vaddr)).toEqual([0x200000n, 0xffffffffc0001000n, 0xffffffffc0002000n, 0xffffffffc0003000n]);
    expect(loads[3]!.filesz).toBe(0x30);
    expect(loads[3]!.memsz).toBe(0xf000n);
  });

  it('resolves symbols both ways', () => {
    const t = new SymbolTable('kernel.elf', elf.symbols());
    expect(t.lookup('panic')?.addr).toBe(0xffffffffc0001683n);
    const r = t.resolve(0xffffffffc00016c0n)!;
    expect(r.sym.name).toBe('panic');
    expect(r.offset).toBe(61n);
    expect(t.resolve(0xffffffffc0005060n + 56n * 2n)?.sym.name).toBe('procs');
  });
});

describe('ElfFile on bad input', () => {
  it('refuses a non-ELF file', () => {
    expect(() => new ElfFile(new BufferByteSource('junk.bin', Buffer.from('hello world, not an elf')))).toThrow(
      'junk.bin: not an ELF file (no \\x7fELF magic at offset 0)',
    );
  });

  it('names a truncated program header table', () => {
    const h = Buffer.alloc(64);
    h.write('\x7fELF', 0, 'latin1');
    h[4] = 2; h[5] = 1; h[6] = 1;
    h.writeUInt16LE(4, 16); // ET_CORE
    h.writeUInt16LE(62, 18);
    h.writeBigUInt64LE(64n, 32); // e_phoff
    h.writeUInt16LE(56, 54); // e_phentsize
    h.writeUInt16LE(3, 56); // e_phnum: 3 headers, none present
    const elf = new ElfFile(new BufferByteSource('cut.core', h));
    expect(() => elf.programHeaders()).toThrow(/cut.core: program header table \(3 entries at offset 0x40\) runs past the end of the file \(size 0x40\)/);
  });
});
