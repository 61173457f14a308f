/**
 * A type looked up "near" a function (Module.typeHomes, DwarfInfo.find's `near`): the unit that
 * .debug_aranges says holds the function is read first, alone, instead of every unit before the
 * one that defines the type; the answer is the one the walk of the units gives. Line lookups find
 * a pc's unit through .debug_aranges without reading the other units' headers. A damaged
 * .debug_aranges is a one-line error.
 */

import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { symbolTableFor } from '../../src/symbols/compact-symbol-table.js';
import { DwarfAranges } from '../../src/symbols/dwarf/dwarf-aranges.js';
import { DW_TAG } from '../../src/symbols/dwarf/dwarf-constants.js';
import { DwarfInfo, dwarfOf } from '../../src/symbols/dwarf/dwarf-info.js';
import { linesOf } from '../../src/symbols/dwarf/dwarf-line.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { SymbolSpace } from '../../src/symbols/symbol-space.js';
import { TypeSpace } from '../../src/types/type-space.js';
import { sizeOf } from '../../src/types/type.js';
import { typesOf } from '../../src/types/type-space.js';
import { elfModule } from '../../src/targets/unwind.js';
import { tempDir } from '../mdb/helpers.js';

let tmp: ReturnType<typeof tempDir>;
let exe = '';

beforeAll(() => {
  tmp = tempDir('dbg-typehomes-');
  // Five units; struct late_frame is defined only by the fourth, next to late_home().
  const files: [string, string][] = [
    ['main.c', 'int early(int);\nint late_home(int);\nint main(int c, char **v) { (void)v; return early(c) + late_home(c); }\n'],
    ['early.c', 'struct early_s { int a; };\nint early(int x) { struct early_s e = { x }; return e.a; }\n'],
    ['middle.c', 'struct middle_s { long m; };\nstruct middle_s middle_obj;\n'],
    ['late.c', 'struct late_frame { long r15, r14, bx, bp; void *ret_addr; };\nint late_home(int x) { struct late_frame f = { x }; return (int)f.r15; }\n'],
    ['tail.c', 'struct late_frame { char other; } tail_obj;\n'],
  ];
  for (const [name, text] of files) writeFileSync(join(tmp.dir, name), text);
  exe = join(tmp.dir, 'homes');
  execFileSync('gcc', ['-O0', '-g', '-o', exe, ...files.map(([n]) => join(tmp.dir, n))]);
});
afterAll(() => tmp?.cleanup());

const lateFrame = (e: { tag: number; declaration: boolean }) => e.tag === DW_TAG.structure_type && !e.declaration;

function withElf<T>(file: string, f: (elf: ElfFile) => T): T {
  const elf = ElfFile.open(file);
  try {
    return f(elf);
  } finally {
    elf.close();
  }
}

describe('types near a function', () => {
  it('the fixture has .debug_aranges, and struct late_frame in a late unit', () => {
    withElf(exe, (elf) => {
      expect(elf.section('.debug_aranges')).toBeDefined();
      const d = new DwarfInfo(elf);
      const at = d.units().findIndex((u) => d.root(u).name?.endsWith('late.c'));
      expect(at).toBeGreaterThanOrEqual(3);
    });
  });

  it('DwarfInfo.find near late_home reads one unit; without near, every unit up to late.c', () => {
    withElf(exe, (elf) => {
      const home = elf.symbols().find((s) => s.name === 'late_home')!.value;
      const near = new DwarfInfo(elf);
      const viaHome = near.find('late_frame', lateFrame, home);
      expect(near.unitsScanned).toBe(1);
      const walk = new DwarfInfo(elf);
      const viaWalk = walk.find('late_frame', lateFrame);
      expect(walk.unitsScanned).toBeGreaterThanOrEqual(4);
      expect(viaHome?.ref).toBe(viaWalk?.ref);
      // the unit read by its offset is the one the headers in order reach later (one object)
      expect(near.units().filter((u) => near.root(u).name?.endsWith('late.c'))).toHaveLength(1);
      expect(near.unitOf(viaHome!.ref)).toBe(near.units().find((u) => near.root(u).name?.endsWith('late.c')));
    });
  });

  it('TypeSpace looks in the unit of Module.typeHomes first, and falls back to the walk when the home is wrong or gone', () => {
    const space = (homes: Map<string, string[]>) => {
      const elf = ElfFile.open(exe);
      const symbols = new SymbolSpace();
      symbols.add({ ...elfModule('homes', exe, elf, symbolTableFor('homes', elf, 0n), 0n), typeHomes: homes });
      return { types: new TypeSpace(symbols), dwarf: dwarfOf(elf)!, elf, module: symbols.modules[0]! };
    };
    const right = space(new Map([['struct late_frame', ['no_such_function', 'late_home']]]));
    const t = right.types.get('struct late_frame *');
    expect(right.dwarf.unitsScanned).toBe(1);
    expect(t.kind).toBe('pointer');
    expect(typesOf(right.module)).toBeDefined();
    const wrong = space(new Map([['struct late_frame', ['early']]]));
    const w = wrong.types.get('struct late_frame');
    expect(sizeOf(w)).toBe(40);
    expect(wrong.dwarf.unitsScanned).toBeGreaterThanOrEqual(4);
    right.elf.close();
    wrong.elf.close();
  });

  it("a pc's unit comes from .debug_aranges without the other units' headers, and its line as gdb's", () => {
    withElf(exe, (elf) => {
      const d = new DwarfInfo(elf);
      const home = elf.symbols().find((s) => s.name === 'late_home')!.value;
      const us = linesOf(d).unitsAt(home);
      expect(us.map((u) => d.root(u).name?.split('/').pop())).toEqual(['late.c']);
      const place = linesOf(d).placeOf(home);
      const gdb = execFileSync('gdb', ['-nx', '-batch', exe, '-ex', `info line *0x${home.toString(16)}`], { encoding: 'utf8' });
      expect(gdb).toContain(`Line ${place!.line} of "`);
      expect(place!.file.name).toMatch(/late\.c$/);
    });
  });

  it('.debug_aranges answers the first questions from its raw words as it does from the parsed ranges, at every range edge', () => {
    withElf(exe, (elf) => {
      const d = new DwarfInfo(elf);
      const parsed = new DwarfAranges(d);
      const ranges = parsed.ranges;
      expect(ranges.length).toBeGreaterThanOrEqual(3);
      const pcs = [0n, ...ranges.flatMap((r) => [r.start - 1n, r.start, r.end - 1n, r.end])];
      for (const pc of pcs) expect(new DwarfAranges(d).unitOffsetsAt(pc), `0x${pc.toString(16)}`).toEqual(parsed.unitOffsetsAt(pc));
    });
  });

  it('a .debug_aranges set with an address size of 3 is one corrupt error naming the set', () => {
    const bad = join(tmp.dir, 'bad-aranges');
    copyFileSync(exe, bad);
    const sec = withElf(bad, (elf) => elf.section('.debug_aranges')!);
    const bytes = readFileSync(bad);
    // unit_length u32, version u16, debug_info_offset u32, then address_size
    bytes[Number(sec.offset) + 10] = 3;
    writeFileSync(bad, bytes);
    withElf(bad, (elf) => {
      const d = new DwarfInfo(elf);
      let err: unknown;
      try {
        linesOf(d).unitsAt(0x1000n);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DbgError);
      expect((err as DbgError).code).toBe('corrupt');
      expect((err as DbgError).message).toBe(`${elf.name}: .debug_aranges: set at 0x0 has address size 3 (expected 2, 4 or 8)`);
    });
  });
});
