/**
 * MDB's match verbs `addr/l value [mask]`, `/L`, `/M` (mdb_cmds.c match_arglist): from addr on, in
 * steps of 2, 4 or 8 bytes, the first unit whose bits under mask equal value; its address printed
 * symbolically and made dot, or, when memory ends first, nothing printed and dot at the end.
 * Checked on bytes the test places itself and on a gcc-built program's array (gdb says where
 * its elements are).
 */

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openTarget } from '../../src/targets/open-target.js';
import { failure, rawSession, run, sessionOn, tempDir } from './helpers.js';

const tmp = tempDir('dbg-match-');
afterAll(() => tmp.cleanup());

function image(): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(0x11223344, 12);
  b.writeUInt16LE(0xbeef, 40);
  b.writeBigUInt64LE(0xdeadbeefcafen, 48);
  return b;
}

describe('match formats /l /L /M', () => {
  it('find the first aligned unit holding the value, from dot on; dot moves there', async () => {
    const s = rawSession(tmp.dir, image());
    expect(await run(s, '0/L 11223344')).toEqual(['0xc']);
    expect(await run(s, '.=K')).toEqual([' '.repeat(16) + 'c']);
    expect(await run(s, '0/l beef')).toEqual(['0x28']);
    expect(await run(s, '0/M deadbeefcafe')).toEqual(['0x30']);
    // a mask: the low byte 0x44 alone
    expect(await run(s, '0/L 44 ff')).toEqual(['0xc']);
    // in steps of the unit's size from the start: from 1, 0xbeef (at 0x28) straddles two units
    expect(await run(s, '1/l beef')).toEqual([]);
  });

  it('no match: nothing printed, dot where memory ends', async () => {
    const s = rawSession(tmp.dir, image());
    expect(await run(s, '0/L 99')).toEqual([]);
    expect(await run(s, '.=K')).toEqual([' '.repeat(16) + '40']);
  });

  it("on a program: the element's address as symbol+offset, as gdb places it", async () => {
    const src = join(tmp.dir, 'arr.c');
    writeFileSync(src, 'unsigned int words[8] = { 1, 2, 3, 0x5a5a, 5, 6, 7, 8 };\nint main(void) { return (int)words[0]; }\n');
    const exe = join(tmp.dir, 'arr');
    execFileSync('gcc', ['-O0', '-g', '-fno-pie', '-no-pie', '-o', exe, src]);
    const gdb = execFileSync('gdb', ['-batch', '-nx', '-ex', 'print/x (char *)&words[3] - (char *)&words[0]', exe], { encoding: 'utf8' });
    const off = /= (0x[0-9a-f]+)/.exec(gdb)![1]!;
    const s = sessionOn(openTarget(exe));
    expect(await run(s, 'words/L 5a5a')).toEqual([`words+${off}`]);
    expect(await run(s, 'words/M 200000001')).toEqual(['words']);
  });

  it.each([
    ['0/L', 'expected value following L (addr/L value [mask])'],
    ['0/L 1 2 3', 'only value and mask may follow L'],
    ['0/LX 1', "format 'L' searches memory for a value: addr/L value [mask], alone after the '/'"],
    ['0/XL', "format 'L' searches memory for a value: addr/L value [mask], alone after the '/'"],
    ['0/M nosuchsym', 'unknown symbol "nosuchsym"'],
  ])('%s is a one-line error', async (line, message) => {
    const s = rawSession(tmp.dir, image());
    const e = await failure(s, line);
    expect(e.message.startsWith(message), e.message).toBe(true);
  });
});
