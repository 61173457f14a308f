/**
 * Values the optimizer kept in part (DW_OP_piece with an empty piece): each member that is there
 * prints, the rest as <optimized out>, as gdb's `bt full` prints them. test/fixtures-src/partial.c
 * at -O2, dumped by gcore.
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { run, sessionOn } from '../mdb/helpers.js';
import { partialValueText } from '../../src/types/frame-source.js';
import type { Type } from '../../src/types/type.js';

let d: Debuggee;
beforeAll(async () => {
  d = await debuggee('partial', { cflags: ['-O2', '-g', '-pthread'] });
});

describe('a struct kept in part at -O2', () => {
  it('::stack -v prints the members that are there and <optimized out> for the rest, as gdb does', async () => {
    const gdb = gdbBatch(d.exe, d.core, ['echo @@bt\\n', 'bt full']);
    const gdbLocal = /^#\d+\s+0x[0-9a-f]+ in split .*\n\s+p = (.*)$/m.exec(gdb.slice(gdb.indexOf('@@bt')))?.[1];
    expect(gdbLocal).toBe('{a = 15, b = <optimized out>}');
    const t = ProcessCoreTarget.open(d.core);
    try {
      const lines = await run(sessionOn(t), '::stack -v');
      const at = lines.findIndex((l) => / split\+0x[0-9a-f]+\(/.test(l));
      expect(at).toBeGreaterThan(0);
      expect(lines[at + 1]!.trim()).toBe(`p = ${gdbLocal}`);
    } finally {
      t.close();
    }
  });

  it('prints nested members, array elements and bit fields by which bytes are there', () => {
    const int: Type = { kind: 'int', name: 'int', size: 4, signed: true, isChar: false };
    const inner: Type = { kind: 'struct', tag: 'in', size: 8, members: [{ name: 'x', bitOffset: 0, type: int }, { name: 'y', bitOffset: 32, type: int }] };
    const outer: Type = {
      kind: 'struct',
      tag: 'out',
      size: 20,
      members: [
        { name: 'i', bitOffset: 0, type: inner },
        { name: 'arr', bitOffset: 64, type: { kind: 'array', element: int, length: 2 } },
        { name: 'lo', bitOffset: 128, bitSize: 4, type: int },
        { name: 'hi', bitOffset: 132, bitSize: 4, type: int },
        { name: 'far', bitOffset: 136, bitSize: 8, type: int },
      ],
    };
    const bytes = Buffer.alloc(20);
    bytes.writeInt32LE(1, 0);
    bytes.writeInt32LE(2, 4);
    bytes.writeInt32LE(3, 8);
    bytes.writeInt32LE(4, 12);
    bytes[16] = 0x75;
    bytes[17] = 9;
    const mem = { read: () => Buffer.alloc(0), littleEndian: true };
    const known = new Uint8Array(20).fill(1);
    known.fill(0, 4, 8); // i.y
    known.fill(0, 12, 16); // arr[1]
    known[17] = 0; // far
    expect(partialValueText(outer, bytes, known, mem)).toBe('{i = {x = 1, y = <optimized out>}, arr = {3, <optimized out>}, lo = 5, hi = 7, far = <optimized out>}');
    expect(partialValueText(outer, bytes, new Uint8Array(20), mem)).toBe('<optimized out>');
    expect(partialValueText(outer, bytes, new Uint8Array(20).fill(1), mem)).toBe('{i = {x = 1, y = 2}, arr = {3, 4}, lo = 5, hi = 7, far = 9}');
  });
});
