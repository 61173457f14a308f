import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureOutput, type Session } from '../../src/mdb/session.js';
import { FakeTarget } from '../gdbserver/fake-target.js';
import { failure, rawSession, run, runJson, sessionOn, tempDir } from './helpers.js';

/*
 * Linked lists laid out in a raw file (address = offset), 8-byte little-endian pointers:
 *   0x100 -> 0x120 -> 0x140 -> NULL     next pointer 8 bytes into each node, values 0t11, 0t22, 0t33
 *   0x200 -> 0x220 -> 0x200 ...         a cycle, next at 8
 *   0x300 -> 0x310 -> NULL              next at offset 0 (the `list` walker's layout)
 */
function image(): Buffer {
  const b = Buffer.alloc(0x400);
  const node = (at: number, value: bigint, next: bigint, nextOff = 8) => {
    b.writeBigUInt64LE(value, at + (nextOff === 8 ? 0 : 8));
    b.writeBigUInt64LE(next, at + nextOff);
  };
  node(0x100, 11n, 0x120n);
  node(0x120, 22n, 0x140n);
  node(0x140, 33n, 0n);
  node(0x200, 1n, 0x220n);
  node(0x220, 2n, 0x200n);
  node(0x300, 0n, 0x310n, 0);
  node(0x310, 0n, 0n, 0);
  return b;
}

let s: Session;
let dir: string;
let cleanup: () => void;
beforeAll(() => {
  const t = tempDir();
  dir = t.dir;
  cleanup = t.cleanup;
  s = rawSession(dir, image());
});
afterAll(() => {
  s.target.close();
  cleanup();
});

describe('::list and ::walk', () => {
  it('follows next pointers OFFSET bytes into each node and stops at NULL', async () => {
    expect(await run(s, '100::list 8')).toEqual(['0x100', '0x120', '0x140']);
    expect(await runJson(s, '100::list 8')).toEqual([{ head: '0x100', offset: '0x8', nodes: ['0x100', '0x120', '0x140'], cycle: null, truncated: null }]);
  });

  it('stops at a cycle and says so beside the answer, not in it', async () => {
    const out = new CaptureOutput(false);
    const warnings: string[] = [];
    await s.execute('200::list 8', { ...out, jsonMode: false, line: (l) => out.lines.push(l), json: () => {}, warn: (w) => warnings.push(w) });
    expect(out.lines).toEqual(['0x200', '0x220']);
    expect(warnings).toEqual(['the list cycles: node 2 points back to 0x200']);
    expect(await runJson(s, '200::list 8')).toEqual([{ head: '0x200', offset: '0x8', nodes: ['0x200', '0x220'], cycle: { to: '0x200', after: 2 }, truncated: null }]);
  });

  it('a cycle inside a pipe ends the pipe with the warning beside it, the nodes passed on', async () => {
    const lines: string[] = [];
    const warnings: string[] = [];
    await s.execute('200::list 8 | ::map .+1', { jsonMode: false, line: (l) => lines.push(l), json: () => {}, warn: (w) => warnings.push(w) });
    expect(lines).toEqual(['201', '221']);
    expect(warnings).toEqual(['the list cycles: node 2 points back to 0x200']);
  });

  it('walks with the list walker and pipes the addresses on', async () => {
    expect(await run(s, '300::walk list')).toEqual(['0x300', '0x310']);
    // Each node's value (first word), through a pipe into a format.
    expect(await run(s, '100::list 8 | /J')).toEqual(['0x100:'.padEnd(16) + 'b', '0x120:'.padEnd(16) + '16', '0x140:'.padEnd(16) + '21']);
    expect(await run(s, '100::list 8 | =K')).toEqual([' '.repeat(16) + '100', ' '.repeat(16) + '120', ' '.repeat(16) + '140']);
  });

  it('reports an unmapped next pointer with the target\'s error', async () => {
    const e = await failure(s, '3f8::list 8');
    expect(e.code).toBe('unmapped');
    expect(e.message).toMatch(/^read of 8 bytes at 0x400 failed: 0x400 is beyond the end of the file/);
  });

  it('checks its arguments', async () => {
    expect((await failure(s, '::list 8')).message).toBe('::list needs the address of the first node (usage: addr::list OFFSET | addr::list TYPE MEMBER)');
    expect((await failure(s, '100::list')).message).toBe('::list needs exactly one OFFSET argument (usage: addr::list OFFSET | addr::list TYPE MEMBER)');
    expect((await failure(s, '100::walk nosuch')).message).toBe("unknown walker 'nosuch' (walkers: list, task, thread)");
    expect((await failure(s, '::walk list')).message).toBe('the list walker needs the address of the first node: addr::walk list');
  });
});

describe('dcmd dispatch', () => {
  it('names an unknown dcmd', async () => {
    const e = await failure(s, '::foo');
    expect(e.code).toBe('bad-input');
    expect(e.message).toBe("unknown dcmd 'foo' (::help lists the dcmds)");
  });

  it('rejects a bad flag with the dcmd and its usage', async () => {
    const e = await failure(s, '::stack -z');
    expect(e.code).toBe('bad-input');
    expect(e.message).toBe('::stack: unknown option -z (usage: ::stack [-a] [-s] [-v])');
    expect((await failure(s, '::dis -n')).message).toBe('::dis: option -n needs a value (usage: [addr]::dis [-s] [-n count] [ADDR])');
  });

  it('names an unknown symbol', async () => {
    const e = await failure(s, 'nosuch/X');
    expect(e.code).toBe('no-symbol');
    expect(e.message).toBe('unknown symbol "nosuch": not defined in any symbol table (none is loaded)');
  });

  it('says where an expression is bad', async () => {
    const e = await failure(s, '::status; 10+(2::nm');
    expect(e.code).toBe('bad-input');
    expect(e.message).toBe('bad expression "10+(2" at column 16: expected ")" but found end of expression');
  });

  it('stops a line at the first failure', async () => {
    const out = new CaptureOutput(false);
    await expect(s.execute('0t1=D; ::foo; 0t2=D', out)).rejects.toThrow(/unknown dcmd 'foo'/);
    expect(out.lines).toEqual([' '.repeat(16) + '1'.padEnd(16)]);
  });

  it('sets dot from addr:: and a bare expression', async () => {
    await run(s, '120');
    expect(s.dot).toBe(0x120n);
    await run(s, '140::list 8');
    expect(s.dot).toBe(0x140n);
  });

  it('a raw file has no threads: ::regs and ::stack say so', async () => {
    expect((await failure(s, '::regs')).message).toMatch(/^registers are not supported by raw file ".*": a file has no threads/);
    expect((await failure(s, '$c')).message).toMatch(/^stacks \(it has no threads\) is not supported by raw file/);
    expect(await run(s, '::threads')).toEqual([expect.stringMatching(/^raw file ".*" has no threads$/)]);
    expect((await failure(s, '1::thread')).message).toMatch(/^no thread 1 \(0t1\): raw file ".*" has no threads$/);
  });

  it('::thread names the threads there are when their numbers have gaps (a stub thread that ended, a kernel task)', async () => {
    const t = new FakeTarget({ threads: 5 });
    const gaps = Object.assign(Object.create(t) as FakeTarget, { threads: () => t.threads().filter((th) => th.index !== 4) });
    const w = sessionOn(gaps);
    expect((await failure(w, '4::thread')).message).toBe('no thread 4 (0t4): threads are 1..3, 5 (hex by default: 0t4 is decimal 4)');
  });

  it('::help lists dcmds and marks those the target cannot run', async () => {
    s.register({
      name: 'test-exec',
      dcmds: [{ name: 'cont', usage: ':c', help: 'continue', needs: ['execution'], run: () => {} }],
    });
    const lines = await run(s, '::help');
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}status +- what is being debugged and why it stopped$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\* cont +- continue \(needs execution\)$/));
    const e = await failure(s, ':c');
    expect(e.code).toBe('unsupported');
    expect(e.message).toMatch(/^execution control is not supported by raw file/);
    expect(await run(s, '::help list')).toEqual([
      'NAME',
      expect.stringMatching(/^ {2}list - follow a linked list/),
      'SYNOPSIS',
      '  addr::list OFFSET | addr::list TYPE MEMBER',
      'DESCRIPTION',
      '  With TYPE MEMBER (DWARF): MEMBER points at the next TYPE, or is an embedded list_head-style node; prints each containing object',
    ]);
  });

  it('::quit stops the rest of the line', async () => {
    const out = new CaptureOutput(false);
    await s.execute('$q; 0t1=D', out);
    expect(s.quitRequested).toBe(true);
    expect(out.lines).toEqual([]);
    s.quitRequested = false;
  });

  it('::load loads a dmod file and its dcmds run', async () => {
    const file = join(dir, 'hello-dmod.mjs');
    writeFileSync(
      file,
      `export default { name: 'hello', dcmds: [{ name: 'hello', usage: '::hello [who]', help: 'greet',
         run(s, inv, out) { out.line('hello ' + (inv.args[0] ?? 'world') + ' at ' + (inv.addr ?? s.dot).toString(16)); } }] };`,
    );
    expect(await run(s, `::load ${file}`)).toEqual(['loaded hello: ::hello']);
    expect(await run(s, '1234::hello mdb')).toEqual(['hello mdb at 1234']);
    expect((await failure(s, `::load ${join(dir, 'missing.mjs')}`)).code).toBe('not-found');
    const notDmod = join(dir, 'not-dmod.mjs');
    writeFileSync(notDmod, 'export const x = 1;');
    expect((await failure(s, `::load ${notDmod}`)).message).toMatch(/is not a dmod: it exports no object with a name and a dcmds array/);
  });

  it('gives structured --json answers', async () => {
    const [st] = (await runJson(s, '::status')) as [Record<string, unknown>];
    expect(st).toMatchObject({ kind: 'file', arch: 'x86-64', threads: 0, reason: { kind: 'none' }, modules: [] });
    expect(await runJson(s, '::mappings')).toEqual([
      [{ start: '0x0000000000000000', end: '0x0000000000000400', size: '0x400', perms: 'r--', name: expect.stringMatching(/raw\.bin$/), fileOffset: '0x0', present: true }],
    ]);
    expect(await runJson(s, '::threads')).toEqual([[]]);
  });
});

describe('variables and repeat', () => {
  it('expr >name sets a variable that <name reads', async () => {
    await run(s, '120>node; <node+8>next');
    expect(await run(s, '<next=K')).toEqual([' '.repeat(16) + '128']);
    expect(await run(s, '*<next=K')).toEqual([' '.repeat(16) + '140']);
    expect((await failure(s, '1>')).message).toMatch(/expected a variable name after ">"/);
    expect(await run(s, '(1>>0)=K')).toEqual([' '.repeat(16) + '1']);
  });

  it('an empty line (repeat) runs the last display format from where it stopped', async () => {
    await run(s, '100,2/J');
    const out = new CaptureOutput(false);
    await s.repeat(out);
    expect(out.lines).toEqual(['0x110:'.padEnd(16) + '0               0               ']);
  });
});

describe('writes through /v /w /W /Z', () => {
  it('writes each value with the target\'s writeMemory and prints the read-back line', async () => {
    const mem = Buffer.alloc(0x40);
    const file = s.target;
    const target = Object.create(file, {
      name: { value: 'writable test target' },
      caps: { value: { writeMemory: { writeVirtual: (a: bigint, d: Buffer) => d.copy(mem, Number(a)) } } },
      readVirtual: { value: (a: bigint, n: number) => Buffer.from(mem.subarray(Number(a), Number(a) + n)) },
    });
    const w = sessionOn(target);
    const lines = await run(w, '10/W 0t5 6; 20/Z cafe; 30/v ff; 32/w 1234');
    expect(mem.readUInt32LE(0x10)).toBe(5);
    expect(mem.readUInt32LE(0x14)).toBe(6);
    expect(mem.readBigUInt64LE(0x20)).toBe(0xcafen);
    expect(mem[0x30]).toBe(0xff);
    expect(mem.readUInt16LE(0x32)).toBe(0x1234);
    expect(lines).toEqual([
      '0x10:           0x0             =       0x5',
      '0x14:           0x0             =       0x6',
      '0x20:           0x0                     =       0xcafe',
      '0x30:           0x0     =       0xff',
      '0x32:           0x0     =       0x1234',
    ]);
    expect(w.dot).toBe(0x32n);
  });
});
