/**
 * Types on the sample kernels: the QEMU-made dump (dumps/qemu) read through its page tables with
 * the kernel's DWARF, against gdb's static answers about the same kernel.elf.
 */

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { openTarget } from '../../src/targets/open-target.js';
import { repoRoot } from '../helpers/repo.js';
import { mdbNumber, offsetofLine, run, sessionOn } from '../mdb/helpers.js';

const kernel = join(repoRoot, 'dumps', 'qemu', 'kernel.elf');
const vmcore = join(repoRoot, 'dumps', 'qemu', 'vmcore.elf');
let s: Session;
let gdb: string[];

beforeAll(() => {
  s = sessionOn(openTarget(vmcore, { symbols: [kernel] }));
  const cmds = ['p sizeof(struct proc)', 'p/x (unsigned long)&((struct proc *)0)->next', 'p/x (unsigned long)&((struct proc *)0)->comm', 'ptype struct proc'];
  const r = spawnSync('gdb', ['-nx', '-batch', '-iex', 'set debuginfod enabled off', kernel, ...cmds.flatMap((c, i) => ['-ex', `echo @@${i}\\n`, '-ex', c])], { encoding: 'utf8' });
  gdb = r.stdout.split(/^@@\d+\n/m).slice(1).map((x) => x.trim().replace(/^\$\d+ = /, ''));
});
afterAll(() => s?.target.close());

describe('the QEMU sample kernel', () => {
  it('::sizeof and ::offsetof agree with gdb on kernel.elf', async () => {
    expect(await run(s, '::sizeof struct proc')).toEqual([`sizeof (struct proc) = ${mdbNumber(gdb[0]!)}`]);
    expect((await run(s, '::offsetof struct proc next'))[0]).toMatch(offsetofLine('struct proc', 'next', gdb[1]!));
    expect((await run(s, '::offsetof struct proc comm'))[0]).toMatch(offsetofLine('struct proc', 'comm', gdb[2]!));
  });

  it('::print -t struct proc lists the members gdb\'s ptype lists, in order, with the same types', async () => {
    const members = gdb[3]!.split('\n').slice(1, -1).map((l) => l.trim().replace(/;$/, ''));
    const ours = (await run(s, '::print -t struct proc')).slice(1, -1).map((l) => l.trim());
    // gdb writes `char comm[24]`, MDB `char [24] comm`.
    expect(ours).toEqual(members.map((m) => m.replace(/^(.*?) (\w+)\[(\d+)\]$/, '$1 [$3] $2')));
  });

  it('procs::print walks the dump through the page tables: the run queue the test of kernel dumps follows', async () => {
    const lines = await run(s, 'procs::print [0]');
    expect(lines).toEqual(['[0] = {', '    [0].pid = 0x1', '    [0].state = 0x1', '    [0].comm = [ "init" ]', '    [0].parent = 0', '    [0].next = procs+0x118', '    [0].ticks = 0x8236', '}']);
    expect(await run(s, '*runqueue::print struct proc comm next->comm')).toEqual(['comm = [ "sshd" ]', 'next->comm = [ "init" ]']);
  });

  it('PHYS::print -p reads the object at its physical address (MDB\'s -p); without physical memory or an address, one line', async () => {
    const vtop = (await run(s, 'procs::vtop')).at(-1)!;
    const phys = /mapped to physical (0x[0-9a-f]+)/.exec(vtop)![1]!;
    expect(await run(s, `${phys}::print -p struct proc comm pid`)).toEqual(['comm = [ "init" ]', 'pid = 0x1']);
    await expect(run(s, '::print -p struct proc')).rejects.toThrow(/^::print -p needs a physical address: addr::print -p TYPE$/);
    const elf = sessionOn(openTarget(kernel, {}));
    try {
      await expect(run(elf, 'procs::print -p struct proc')).rejects.toThrow(/^::print -p \(physical memory\) is not supported by .*kernel\.elf.*$/);
    } finally {
      elf.target.close();
    }
  });
});
