/**
 * A relocatable object placed where a loader put its sections (placedObject, as dbg reads a
 * kernel module's .ko): its DWARF's lines are gdb's for the object added at those addresses
 * (add-symbol-file -s); relocations that lie are one-line corrupt errors.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { DwarfInfo } from '../../src/symbols/dwarf/dwarf-info.js';
import { linesOf } from '../../src/symbols/dwarf/dwarf-line.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { placedObject } from '../../src/symbols/elf-relocate.js';
import { tempDir } from '../mdb/helpers.js';

let tmp: ReturnType<typeof tempDir>;
let obj = '';
const TEXT = 0xffffffffc0010000n;
const DATA = 0xffffffffc0020000n;

beforeAll(() => {
  tmp = tempDir('dbg-relocate-');
  const src = join(tmp.dir, 'mod.c');
  writeFileSync(src, 'int counter = 3;\nint bump(int by)\n{\n  counter += by;\n  return counter;\n}\nint twice(int x)\n{\n  return bump(x) + bump(x);\n}\n');
  obj = join(tmp.dir, 'mod.o');
  execFileSync('gcc', ['-c', '-g', '-O0', '-fno-pic', '-mcmodel=kernel', '-o', obj, src]);
});
afterAll(() => tmp?.cleanup());

function withObject<T>(file: string, f: (elf: ElfFile, bases: Map<number, bigint>) => T): T {
  const elf = ElfFile.open(file);
  try {
    const secs = elf.sections();
    const bases = new Map([
      [secs.findIndex((s) => s.name === '.text'), TEXT],
      [secs.findIndex((s) => s.name === '.data'), DATA],
    ]);
    return f(elf, bases);
  } finally {
    elf.close();
  }
}

describe('placedObject', () => {
  it("a placed object's lines are gdb's for add-symbol-file -s .text ADDR", () => {
    const ours = withObject(obj, (elf, bases) => {
      const placed = placedObject(elf, bases);
      const lines = linesOf(new DwarfInfo(placed));
      const syms = elf.symbols().filter((s) => s.name === 'bump' || s.name === 'twice');
      expect(placed.sections().find((s) => s.name === '.text')!.addr).toBe(TEXT);
      return syms.flatMap((s) => [0n, 8n].map((off) => ({ pc: TEXT + s.value + off, line: lines.placeOf(TEXT + s.value + off)?.line })));
    });
    expect(ours.every((o) => o.line !== undefined)).toBe(true);
    const g = execFileSync('gdb', ['-nx', '-batch', '-ex', `add-symbol-file ${obj} -s .text 0x${TEXT.toString(16)} -s .data 0x${DATA.toString(16)}`, ...ours.flatMap((o) => ['-ex', `info line *0x${o.pc.toString(16)}`])], { encoding: 'utf8', input: 'y\n' });
    expect([...g.matchAll(/^Line (\d+) of "/gm)].map((m) => Number(m[1]))).toEqual(ours.map((o) => o.line));
  });

  it('relocations that lie (an unknown type, a place outside the section, a symbol the table lacks) are one-line corrupt errors', () => {
    const { offset } = withObject(obj, (elf) => elf.sections().find((s) => s.name === '.rela.debug_info')!);
    const cases: [number, (b: Buffer) => void, RegExp][] = [
      [0, (b) => b.writeUInt32LE(99, offset + 8), /: \.rela\.debug_info entry 0: relocation type 99, which dbg does not apply to debug sections \(64, PC32, 32, 32S\)$/],
      [1, (b) => b.writeBigUInt64LE(0x7fffffffn, offset), /: \.rela\.debug_info entry 0: offset 0x7fffffff is outside \.debug_info \(0x[0-9a-f]+ bytes\)$/],
      [2, (b) => b.writeUInt32LE(100000, offset + 12), /: \.rela\.debug_info entry 0: symbol 100000, but the symbol table has \d+$/],
    ];
    for (const [i, patch, message] of cases) {
      const bytes = readFileSync(obj);
      patch(bytes);
      const bad = join(tmp.dir, `bad-${i}.o`);
      writeFileSync(bad, bytes);
      withObject(bad, (elf, bases) => {
        let err: unknown;
        try {
          placedObject(elf, bases);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DbgError);
        expect((err as DbgError).code).toBe('corrupt');
        expect((err as DbgError).message).toMatch(message);
        expect((err as DbgError).message).not.toContain('\n');
      });
    }
  });
});
