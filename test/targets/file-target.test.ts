import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { FileTarget } from '../../src/targets/file/file-target.js';
import { openTarget } from '../../src/targets/open-target.js';
import { tempDir } from '../mdb/helpers.js';

function thrown(f: () => unknown): DbgError {
  try {
    f();
  } catch (e) {
    if (e instanceof DbgError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

let dir: string;
let cleanup: () => void;
let raw: string;
let exe: string;
beforeAll(() => {
  const t = tempDir('dbg-file-target-');
  dir = t.dir;
  cleanup = t.cleanup;
  raw = join(dir, 'data.bin');
  writeFileSync(raw, Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)));
  writeFileSync(join(dir, 'prog.c'), 'int answer = 42;\nint main(void) { return answer; }\n');
  exe = join(dir, 'prog');
  execFileSync('gcc', ['-O0', '-g', '-no-pie', '-o', exe, join(dir, 'prog.c')]);
});
afterAll(() => cleanup());

describe('FileTarget.raw', () => {
  it('reads bytes at their offsets', () => {
    const t = FileTarget.raw(raw);
    expect([...t.readVirtual(0n, 4)]).toEqual([0, 1, 2, 3]);
    expect([...t.readVirtual(254n, 4)]).toEqual([254, 255, 0, 1]);
    expect(t.readVirtual(296n, 4).length).toBe(4);
    expect(t.readVirtual(10n, 0).length).toBe(0);
    t.close();
  });

  it('is one mapping, no threads, no registers, nothing ran', () => {
    const t = FileTarget.raw(raw);
    expect(t.kind).toBe('file');
    expect(t.name).toBe(`raw file "${raw}"`);
    expect(t.mappings()).toEqual([{ start: 0n, end: 300n, perms: 'r--', name: raw, fileOffset: 0n }]);
    expect(t.threads()).toEqual([]);
    expect(t.status()).toEqual({ reason: { kind: 'none' }, thread: 0, pc: 0n });
    const e = thrown(() => t.registers(1));
    expect(e.code).toBe('unsupported');
    expect(e.message).toBe(`registers are not supported by raw file "${raw}": a file has no threads (asked for thread 1)`);
    expect(t.symbols.modules).toEqual([]);
    t.close();
    t.close(); // idempotent
  });

  it('fails past the end, naming the first missing address and the size', () => {
    const t = FileTarget.raw(raw);
    const e = thrown(() => t.readVirtual(298n, 4));
    expect(e.code).toBe('unmapped');
    expect(e.message).toBe(`read of 4 bytes at 0x12a failed: 0x12c is beyond the end of the file (size 0x12c) in raw file "${raw}"`);
    expect(thrown(() => t.readVirtual(0x1000n, 1)).message).toMatch(/^read of 1 bytes at 0x1000 failed: 0x1000 is beyond the end/);
    t.close();
    expect(thrown(() => t.readVirtual(0n, 1)).code).toBe('state');
  });

  it('refuses a missing file and a directory', () => {
    const e = thrown(() => FileTarget.raw(join(dir, 'nope')));
    expect(e.code).toBe('not-found');
    expect(e.message).toBe(`cannot open "${join(dir, 'nope')}": no such file`);
    expect(thrown(() => FileTarget.raw(dir)).message).toBe(`cannot open "${dir}": it is a directory`);
  });
});

describe('FileTarget.elf', () => {
  it('reads an executable at its link-time addresses, with its symbols', () => {
    const t = FileTarget.elf(exe);
    expect(t.name).toBe(`executable "${exe}"`);
    const main = t.symbols.lookup('main');
    const answer = t.symbols.lookup('answer');
    // main's bytes are the file's bytes at the offset its PT_LOAD maps it from.
    const elf = ElfFile.open(exe);
    const seg = elf.loadSegments().find((p) => main >= p.vaddr && main < p.vaddr + p.memsz)!;
    const off = Number(main - seg.vaddr) + seg.offset;
    expect(t.readVirtual(main, 8)).toEqual(readFileSync(exe).subarray(off, off + 8));
    elf.close();
    expect(t.readVirtual(answer, 4).readInt32LE(0)).toBe(42);
    expect(t.mappings().length).toBeGreaterThanOrEqual(2);
    expect(t.mappings().some((m) => m.perms === 'r-x' && main >= m.start && main < m.end)).toBe(true);
    expect(t.threads()).toEqual([]);
    t.close();
  });

  it('fails outside the PT_LOAD segments, naming the nearest', () => {
    const t = FileTarget.elf(exe);
    const e = thrown(() => t.readVirtual(0x10n, 4));
    expect(e.code).toBe('unmapped');
    expect(e.message).toMatch(new RegExp(`^read of 4 bytes at 0x10 failed: 0x10 is not in any PT_LOAD segment of the file \\(nearest 0x400000-0x[0-9a-f]+\\) in executable "${exe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"$`));
    t.close();
  });
});

describe('openTarget', () => {
  it('opens a non-ELF file raw, and an ELF file raw with --raw', () => {
    const a = openTarget(raw);
    expect(a.name).toBe(`raw file "${raw}"`);
    a.close();
    const b = openTarget(exe, { raw: true });
    expect(b.name).toBe(`raw file "${exe}"`);
    expect([...b.readVirtual(0n, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]);
    b.close();
  });

  it('opens an executable as an ELF file target (as mdb opens a.out)', () => {
    const t = openTarget(exe);
    expect(t.kind).toBe('file');
    expect(t.name).toBe(`executable "${exe}"`);
    expect(t.symbols.find('main')).toBeDefined();
    t.close();
  });

  it('refuses options that do not apply, and missing files', () => {
    expect(thrown(() => openTarget(raw, { exe: 'a.out' })).message).toBe(`--exe does not apply to "${raw}", which is not an ELF file and opens as a raw file`);
    expect(thrown(() => openTarget(raw, { raw: true, sysroot: '/' })).message).toBe('--sysroot does not apply to a raw file (--raw)');
    expect(thrown(() => openTarget(exe, { symbols: ['vmlinux'] })).message).toBe(`--symbols does not apply to "${exe}", an ELF executable that opens as a file target`);
    const e = thrown(() => openTarget(join(dir, 'missing.core')));
    expect(e.code).toBe('not-found');
    expect(e.message).toBe(`cannot open "${join(dir, 'missing.core')}": no such file`);
  });

  it('reports a truncated ELF header as corrupt', () => {
    const bad = join(dir, 'short.elf');
    writeFileSync(bad, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));
    const e = thrown(() => openTarget(bad));
    expect(e.code).toBe('corrupt');
  });
});
