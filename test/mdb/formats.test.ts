import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { failure, rawSession, run, tempDir } from './helpers.js';

/*
 * The raw target's address is the file offset, and a raw file has no symbols, so every line
 * starts with the hex address: `0x10:` padded to column 16, as MDB prints it.
 *
 *   0x00  78 56 34 12 f0 de bc 9a   two u32: 0x12345678 0x9abcdef0
 *   0x08  u64 0xfedcba9876543210
 *   0x10  "hello\0world\0"
 *   0x20  i32 -2, u16 0xbeef
 *   0x28  double 2.5;  0x30 float 1.5;  0x34 'A' 'B' '\n' 0x01
 *   0x40  55 48 89 e5 c3            pushq %rbp; movq %rsp,%rbp; retq
 *   0x48  time32 0, time64 86400
 */
function image(): Buffer {
  const b = Buffer.alloc(0x60);
  b.writeUInt32LE(0x12345678, 0);
  b.writeUInt32LE(0x9abcdef0, 4);
  b.writeBigUInt64LE(0xfedcba9876543210n, 8);
  b.write('hello\0world\0', 0x10, 'latin1');
  b.writeInt32LE(-2, 0x20);
  b.writeUInt16LE(0xbeef, 0x24);
  b.writeDoubleLE(2.5, 0x28);
  b.writeFloatLE(1.5, 0x30);
  Buffer.from([0x41, 0x42, 0x0a, 0x01]).copy(b, 0x34);
  Buffer.from([0x55, 0x48, 0x89, 0xe5, 0xc3]).copy(b, 0x40);
  b.writeInt32LE(0, 0x48);
  b.writeBigInt64LE(86400n, 0x50);
  return b;
}

let s: Session;
let cleanup: () => void;
beforeAll(() => {
  const t = tempDir();
  cleanup = t.cleanup;
  s = rawSession(t.dir, image());
});
afterAll(() => {
  s.target.close();
  cleanup();
});

const pad = (label: string) => label.padEnd(16);

describe('addr/fmt on a raw file', () => {
  it('X: 4-byte hex, 16 wide; a count repeats and wraps at 80 columns with a 16-column indent', async () => {
    expect(await run(s, '0/X')).toEqual([pad('0x0:') + '12345678']);
    expect(await run(s, '0,2/X')).toEqual([pad('0x0:') + '12345678        9abcdef0']);
    expect(await run(s, '0/2X')).toEqual([pad('0x0:') + '12345678        9abcdef0']);
    expect(await run(s, '0,6/X')).toEqual([
      pad('0x0:') + '12345678        9abcdef0        76543210        fedcba98',
      ' '.repeat(16) + '6c6c6568        6f77006f',
    ]);
  });

  it('J and K: 8-byte hex (pointer-sized K on x86-64)', async () => {
    expect(await run(s, '8/J')).toEqual([pad('0x8:') + 'fedcba9876543210']);
    expect(await run(s, '8/K')).toEqual([pad('0x8:') + 'fedcba9876543210']);
    // MDB widens J to 17 when the top nibble is set, so values never touch.
    expect(await run(s, '8,2/J')).toEqual([pad('0x8:') + 'fedcba9876543210 6f77006f6c6c6568']);
  });

  it('B x o b: bytes and shorts', async () => {
    expect(await run(s, '0,4/B')).toEqual([pad('0x0:') + '78      56      34      12']);
    expect(await run(s, '24/x')).toEqual([pad('0x24:') + 'beef']);
    expect(await run(s, '0/o')).toEqual([pad('0x0:') + '053170']);
    expect(await run(s, '0/b')).toEqual([pad('0x0:') + '0170']);
  });

  it('D U E d u: decimal, signed and unsigned', async () => {
    expect(await run(s, '20/D')).toEqual([pad('0x20:') + '-2']);
    expect(await run(s, '20/U')).toEqual([pad('0x20:') + '4294967294']);
    expect(await run(s, '20/E')).toEqual([pad('0x20:') + (0xbeeffffffffen).toString(10)]);
    expect(await run(s, '24/d')).toEqual([pad('0x24:') + '-16657']);
    expect(await run(s, '24/u')).toEqual([pad('0x24:') + '48879']);
    expect(await run(s, '20/e')).toEqual([pad('0x20:') + (0xbeeffffffffen).toString(10)]);
  });

  it('c C s S: characters and strings', async () => {
    expect(await run(s, '34/c')).toEqual([pad('0x34:') + 'A']);
    expect(await run(s, '34,2/c')).toEqual([pad('0x34:') + 'AB']);
    expect(await run(s, '34/4C')).toEqual([pad('0x34:') + 'AB\\n\\001']);
    expect(await run(s, '10/s')).toEqual([pad('0x10:') + 'hello']);
    expect(await run(s, '16/s')).toEqual([pad('0x16:') + 'world']);
    expect(await run(s, '34/S')).toEqual([pad('0x34:') + 'AB\\n\\001']);
  });

  it('F f: floating point', async () => {
    expect(await run(s, '28/F')).toEqual([pad('0x28:') + '2.5']);
    expect(await run(s, '30/f')).toEqual([pad('0x30:') + '1.500000e+00']);
  });

  it('i I: disassembly, labels only on the first line as MDB prints a count', async () => {
    expect(await run(s, '40/i')).toEqual([pad('0x40:') + 'pushq  %rbp']);
    expect(await run(s, '40,3/i')).toEqual([pad('0x40:') + 'pushq  %rbp', ' '.repeat(16) + 'movq   %rsp,%rbp', ' '.repeat(16) + 'retq']);
    expect(await run(s, '40/I')).toEqual([pad('0x40:') + '40 e5894855: pushq  %rbp']);
  });

  it('a p Y y R: symbolic address, pointer, times, binary', async () => {
    expect(await run(s, '40/a')).toEqual([pad('0x40:') + '0x40:']);
    expect(await run(s, '48/Y')).toEqual([pad('0x48:') + '1970 Jan 01 00:00:00']);
    expect(await run(s, '50/y')).toEqual([pad('0x50:') + '1970 Jan 02 00:00:00']);
    expect(await run(s, '34/p')).toEqual([pad('0x34:') + '0x10a4241']);
    expect(await run(s, '40/R')).toEqual([pad('0x40:') + 0xc3e5894855n.toString(2)]);
  });

  it('quoted text, + and - move within one format', async () => {
    expect(await run(s, '0/"v="X')).toEqual([pad('0x0:') + 'v=12345678']);
    expect(await run(s, '0/X4+X')).toEqual([pad('0x0:') + '12345678        76543210']);
  });

  it('leaves dot at the last address printed from', async () => {
    await run(s, '0,3/X');
    expect(s.dot).toBe(8n);
    expect(await run(s, '/X')).toEqual([pad('0x8:') + '76543210']);
  });
});

describe('expr=fmt', () => {
  it('prints the value indented to the margin, as MDB does', async () => {
    expect(await run(s, '0t10=D')).toEqual([' '.repeat(16) + '10']);
    expect(await run(s, '0t255=X')).toEqual([' '.repeat(16) + 'ff']);
    expect(await run(s, '-1=J')).toEqual([' '.repeat(16) + 'ffffffffffffffff']);
    expect(await run(s, '41=c')).toEqual([' '.repeat(16) + 'A']);
    expect(await run(s, '0x10=U')).toEqual([' '.repeat(16) + '16']);
    expect(await run(s, '10+0t10=E')).toEqual([' '.repeat(16) + '26']);
    expect(s.dot).toBe(0x1an);
  });
});

describe('format errors', () => {
  it('rejects an unknown format character, naming it', async () => {
    const e = await failure(s, '0/k');
    expect(e.code).toBe('bad-input');
    expect(e.message).toBe(`unknown format character 'k' in "k" (::formats lists them)`);
  });

  it('passes on the target\'s unmapped-address error', async () => {
    const e = await failure(s, '100/X');
    expect(e.code).toBe('unmapped');
    expect(e.message).toMatch(/^read of 4 bytes at 0x100 failed: 0x100 is beyond the end of the file \(size 0x60\) in raw file ".*raw\.bin"$/);
  });

  it('prints what it read before an unmapped address and then fails', async () => {
    const lines: string[] = [];
    const out = { jsonMode: false, line: (l: string) => lines.push(l), json: () => {} };
    await expect(s.execute('58,4/X', out)).rejects.toThrow(/0x60 is beyond the end/);
    expect(lines).toEqual([pad('0x58:') + '0               0               ']); // MDB keeps the padding
  });

  it('a write needs the writeMemory capability; a write needs a value', async () => {
    const e = await failure(s, '0/W 5');
    expect(e.code).toBe('unsupported');
    expect(e.message).toMatch(/^writing memory is not supported by raw file/);
    expect((await failure(s, '0/Z')).message).toBe('expected a value to write following /Z');
  });

  it('refuses arguments after a display format, and giant counts', async () => {
    expect((await failure(s, '0/X 5')).message).toBe('unexpected argument "5" after format "X"');
    expect((await failure(s, '0,fffffffff/X')).message).toMatch(/count 68719476735 is too large/);
  });
});
