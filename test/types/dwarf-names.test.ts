/**
 * A function the symbol table does not name is named from its DWARF in ::stack -s/-v, as gdb
 * names it (gdb reads function names from DWARF; dbg reads the symbol table first): here the
 * symbols of test/fixtures-src/frames.c's compute and wait_here are removed from a copy of the
 * executable with objcopy, its DWARF kept.
 */

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch } from '../helpers/debuggee.js';
import { run, sessionOn, tempDir } from '../mdb/helpers.js';

const tmp = tempDir('dbg-dwarf-names-');
afterAll(() => tmp.cleanup());

describe('functions without a symbol', () => {
  it('::stack -s names them from DWARF with their offset, where gdb names them too', async () => {
    const d = await debuggee('frames');
    const exe = join(tmp.dir, 'frames-nosyms');
    execFileSync('objcopy', ['-N', 'compute', '-N', 'wait_here', d.exe, exe]);
    const gdb = gdbBatch(exe, d.core, ['echo @@bt\\n', 'bt']);
    expect(gdb).toMatch(/ in wait_here \(depth=/);
    expect(gdb).toMatch(/ compute \(a=/);
    const t = ProcessCoreTarget.open(d.core, { exe });
    try {
      const plain = await run(sessionOn(t), '::stack');
      expect(plain.some((l) => / wait_here\+/.test(l))).toBe(false); // the symbol is gone
      const rows = await run(sessionOn(t), '::stack -s');
      expect(rows.find((l) => / wait_here\+0x[0-9a-f]+ at .*frames\.c:\d+$/.test(l))).toBeDefined();
      expect(rows.find((l) => / compute\+0x[0-9a-f]+ at .*frames\.c:\d+$/.test(l))).toBeDefined();
    } finally {
      t.close();
    }
  });
});
