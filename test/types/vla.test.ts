/**
 * C99 variable-length arrays in ::stack -v: a VLA's bound is a DWARF expression over the frame (or
 * an artificial variable at -O2), so its length is known only in that frame. dbg must print them
 * as gdb's `bt full` does: test/fixtures-src/vla.c at -O0 and -O2, dumped by gcore.
 */

import { describe, expect, it } from 'vitest';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch } from '../helpers/debuggee.js';
import { run, sessionOn } from '../mdb/helpers.js';

/** The locals of fill() as `NAME = VALUE` lines: gdb's bt full and dbg's ::stack -v. */
async function fillLocals(cflags: string[]): Promise<{ gdb: string[]; dbg: string[] }> {
  const d = await debuggee('vla', { cflags });
  const bt = gdbBatch(d.exe, d.core, ['echo @@bt\\n', 'bt full']);
  const frame = /^#\d+\s+0x[0-9a-f]+ in fill .*\n((?:\s{8}.*\n)*)/m.exec(bt.slice(bt.indexOf('@@bt')) + '\n');
  const gdb = (frame?.[1] ?? '').split('\n').map((l) => l.trim()).filter((l) => / = /.test(l) && !l.startsWith('i = '));
  const t = ProcessCoreTarget.open(d.core, { exe: d.exe });
  try {
    const lines = await run(sessionOn(t), '::stack -v');
    const at = lines.findIndex((l) => / fill\+0x[0-9a-f]+\(/.test(l));
    const dbg: string[] = [];
    for (let i = at + 1; i < lines.length && lines[i]!.startsWith('        '); i++) dbg.push(lines[i]!.trim());
    return { gdb, dbg: dbg.filter((l) => !l.startsWith('i = ')) };
  } finally {
    t.close();
  }
}

describe('variable-length arrays', () => {
  it('at -O0 print with their frame\'s lengths, as gdb prints them', async () => {
    const { gdb, dbg } = await fillLocals(['-O0', '-g']);
    expect(gdb).toContain('vla = {0, 3, 6, 9}');
    expect(gdb).toContain('grid = {"abcd", "ABCD"}');
    expect(dbg.sort()).toEqual(gdb.sort());
  });

  it('at -O2 (bounds in artificial variables, or gone) agree with gdb too', async () => {
    const { gdb, dbg } = await fillLocals(['-O2', '-g']);
    expect(gdb.length).toBeGreaterThan(0);
    expect(dbg.sort()).toEqual(gdb.sort());
  });
});
