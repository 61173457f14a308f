/**
 * Name lookups through .gdb_index and .debug_names (as gdb-add-index writes them): the same
 * answers as gdb and as a walk of every unit, while reading only the units the index names; a
 * damaged index is a one-line error.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DwarfInfo } from '../../src/symbols/dwarf/dwarf-info.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { openTarget } from '../../src/targets/open-target.js';
import { fixturesSrc } from '../helpers/debuggee.js';
import { failure, mdbNumber, offsetofLine, run, sessionOn, tempDir } from '../mdb/helpers.js';

let tmp: ReturnType<typeof tempDir>;
const exes: Record<'plain' | 'gdbIndex' | 'debugNames', string> = { plain: '', gdbIndex: '', debugNames: '' };
const questions = ['::sizeof struct job', '::offsetof struct job name', '::sizeof int', '::sizeof struct extra_a', '::offsetof struct extra_b tail', 'jobs::print [2].id', 'extra_b_obj::print tail'];

beforeAll(() => {
  tmp = tempDir('dbg-nameindex-');
  // three units: frames.c and two small ones, each with its own struct
  writeFileSync(join(tmp.dir, 'a.c'), 'struct extra_a { char c; long l; } extra_a_obj = { 1, 2 };\n');
  writeFileSync(join(tmp.dir, 'b.c'), 'struct extra_b { int head; short tail; } extra_b_obj = { 3, 4 };\n');
  exes.plain = join(tmp.dir, 'plain');
  execFileSync('gcc', ['-O0', '-g', '-o', exes.plain, join(fixturesSrc, 'frames.c'), join(tmp.dir, 'a.c'), join(tmp.dir, 'b.c')]);
  exes.gdbIndex = join(tmp.dir, 'gdbindex');
  copyFileSync(exes.plain, exes.gdbIndex);
  execFileSync('gdb-add-index', [exes.gdbIndex]);
  exes.debugNames = join(tmp.dir, 'debugnames');
  copyFileSync(exes.plain, exes.debugNames);
  execFileSync('gdb-add-index', ['-dwarf-5', exes.debugNames]);
});
afterAll(() => tmp?.cleanup());

async function answers(exe: string): Promise<string[]> {
  const s = sessionOn(openTarget(exe, {}));
  try {
    const out: string[] = [];
    for (const q of questions) out.push((await run(s, q)).join('\n'));
    return out;
  } finally {
    s.target.close();
  }
}

describe('name indexes', () => {
  it('the indexed files really have their index', () => {
    const has = (f: string, sec: string) => {
      const e = ElfFile.open(f);
      try {
        return e.section(sec) !== undefined;
      } finally {
        e.close();
      }
    };
    expect([has(exes.gdbIndex, '.gdb_index'), has(exes.debugNames, '.debug_names'), has(exes.plain, '.gdb_index')]).toEqual([true, true, false]);
  });

  it('answer as the walk of every unit does, and as gdb does', async () => {
    const plain = await answers(exes.plain);
    expect(await answers(exes.gdbIndex)).toEqual(plain);
    expect(await answers(exes.debugNames)).toEqual(plain);
    const g = spawnSync('gdb', ['-nx', '-batch', exes.gdbIndex, '-ex', 'p sizeof(struct job)', '-ex', 'p sizeof(struct extra_a)', '-ex', 'p/x &((struct extra_b *)0)->tail'], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.replace(/^\$\d+ = /, ''));
    expect([plain[0], plain[3]]).toEqual([`sizeof (struct job) = ${mdbNumber(g[0]!)}`, `sizeof (struct extra_a) = ${mdbNumber(g[1]!)}`]);
    expect(plain[4]).toMatch(offsetofLine('struct extra_b', 'tail', g[2]!));
  });

  it('read only the unit the index names', () => {
    for (const f of [exes.gdbIndex, exes.debugNames, exes.plain]) {
      const elf = ElfFile.open(f);
      try {
        const d = new DwarfInfo(elf);
        const units = d.units().length;
        expect(units).toBeGreaterThanOrEqual(3);
        expect(d.lookup('extra_b').length).toBe(1);
        expect(d.lookup('no_such_name_anywhere')).toEqual([]);
        expect(d.unitsScanned).toBe(f === exes.plain ? units : 1);
      } finally {
        elf.close();
      }
    }
  });

  it('a damaged index is one dbg error naming the section and what is wrong', async () => {
    const bad = join(tmp.dir, 'badindex');
    copyFileSync(exes.gdbIndex, bad);
    const elf = ElfFile.open(bad);
    const off = Number(elf.section('.gdb_index')!.offset);
    elf.close();
    const b = readFileSync(bad);
    b.writeUInt32LE(0x7fffffff, off + 16); // the symbol table past the section
    writeFileSync(bad, b);
    const s = sessionOn(openTarget(bad, {}));
    try {
      expect((await failure(s, '::sizeof struct job')).message).toMatch(/\/badindex: \.gdb_index: header offsets 0x18, 0x[0-9a-f]+, 0x7fffffff, 0x[0-9a-f]+ are out of order or past the section \(0x[0-9a-f]+ bytes\)$/);
      expect(await run(s, 'main::nm')).toHaveLength(2);
    } finally {
      s.target.close();
    }
    const bad5 = join(tmp.dir, 'badnames');
    copyFileSync(exes.debugNames, bad5);
    const e5 = ElfFile.open(bad5);
    const off5 = Number(e5.section('.debug_names')!.offset);
    e5.close();
    const b5 = readFileSync(bad5);
    b5.writeUInt16LE(9, off5 + 4);
    writeFileSync(bad5, b5);
    const s5 = sessionOn(openTarget(bad5, {}));
    try {
      expect((await failure(s5, '::sizeof struct job')).message).toMatch(/\/badnames: \.debug_names: index at 0x0 has version 9 \(expected 5\)$/);
    } finally {
      s5.target.close();
    }
  });
});
