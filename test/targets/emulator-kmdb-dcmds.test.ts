/**
 * MDB's ::enable/::disable and KMDB's ::cpuregs [-c CPU] and ::switch CPU on the sample kernel
 * with two vCPUs (and ::cpuregs on a ::dump of it), with their bad-input messages.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { session } from './emulator-session.js';
import { sampleKernel } from './sample-kernel.js';

const kernel = sampleKernel();
const dir = mkdtempSync(join(tmpdir(), 'dbg-kmdb-dcmds-'));
const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2 });
afterAll(() => {
  t.close();
  rmSync(dir, { recursive: true, force: true });
});
const s = session(t);

describe('::enable and ::disable', () => {
  it('a disabled breakpoint does not stop the guest, keeps its id and hits, and stops again once enabled', async () => {
    await s.run('task_worker::bp; log_append::bp');
    expect(await s.run('::disable 1')).toEqual(['1: breakpoint at 0xffffffff8010108c task_worker; hits 0 (disabled)']);
    expect(await s.run(':c')).toEqual(['stopped: breakpoint 2 at 0xffffffff80101402 log_append on vCPU 0']);
    expect(await s.run('::disable -a; ::enable 1')).toEqual([
      '1: breakpoint at 0xffffffff8010108c task_worker; hits 0 (disabled)',
      '2: breakpoint at 0xffffffff80101402 log_append; hits 1 (disabled)',
      '1: breakpoint at 0xffffffff8010108c task_worker; hits 0',
    ]);
    expect(await s.run(':c')).toEqual(['stopped: breakpoint 1 at 0xffffffff8010108c task_worker on vCPU 1']);
    expect(await s.run('::events')).toEqual([
      '1: breakpoint at 0xffffffff8010108c task_worker; hits 1',
      '2: breakpoint at 0xffffffff80101402 log_append; hits 1 (disabled)',
    ]);
    await s.run('::delete all');
  });

  it('bad input names what was wrong', async () => {
    await expect(s.run('::disable')).rejects.toThrow('::disable needs event ids or -a (usage: ::disable -a | N... | N::disable)');
    await expect(s.run('::enable 9')).rejects.toThrow('no breakpoint or watchpoint with id 9 (see ::events)');
    await expect(s.run('::enable x')).rejects.toThrow('::enable: "x" is not an event id (see ::events)');
  });
});

describe('::cpuregs and ::switch', () => {
  it('::cpuregs -c shows another CPU without selecting it; ::switch selects it', async () => {
    expect((await s.run('::thread'))[0]).toBe('thread 2 (vCPU 1, tid 1) selected');
    const cpu0 = await s.run('::cpuregs -c 0');
    expect(cpu0).toContain(`%rip        = 0x${t.machine.pc(0).toString(16).padStart(16, '0')} ${t.symbols.describe(t.machine.pc(0))}`);
    expect((await s.run('::thread'))[0]).toBe('thread 2 (vCPU 1, tid 1) selected');
    expect(await s.run('::cpuregs')).toEqual(await s.run('::regs'));
    expect(await s.run('0::switch')).toEqual(['thread 1 (vCPU 0, tid 0) selected']);
    expect(await s.run('::cpuregs')).toEqual(cpu0);
    expect(await s.run('::switch 1')).toEqual(['thread 2 (vCPU 1, tid 1) selected']);
  });

  it('::cpuregs -c on a ::dump of the guest gives the same registers', async () => {
    const dump = join(dir, 'k.dump');
    await s.run(`::dump ${dump}`);
    const d = KernelDumpTarget.open(dump, { symbols: [kernel] });
    try {
      const pick = (lines: string[]) => lines.filter((l) => /^%(r[a-z0-9]+|eflags) /.test(l));
      expect(pick(await session(d).run('::cpuregs -c 0'))).toEqual(pick(await s.run('::cpuregs -c 0')));
    } finally {
      d.close();
    }
  });

  it('bad input names what was wrong', async () => {
    await expect(s.run('::cpuregs -c 7')).rejects.toThrow(`::cpuregs: no CPU 7: ${t.name} has CPUs 0, 1`);
    await expect(s.run('::switch')).rejects.toThrow('::switch needs one CPU number (usage: CPU::switch | ::switch CPU)');
    await expect(s.run('::cpuregs 1')).rejects.toThrow('::cpuregs: unexpected "1" (usage: ::cpuregs [-c CPU])');
  });
});

describe('::panicinfo on a live guest', () => {
  it('before the panic says none; after it, the same as dbg open of a ::dump of that state', async () => {
    const g = EmulatorTarget.open(kernel, { ramBytes: 32 << 20 });
    try {
      const p = session(g);
      expect((await p.run('::panicinfo')).slice(0, 2)).toEqual(['       cpu 0 (thread 1)', '   message (no panic: no vCPU is in panic() now)']);
      await p.run(':c');
      const live = await p.run('::panicinfo');
      expect(live.slice(0, 3)).toEqual(['       cpu 0 (thread 1)', '   message scheduler: task list corrupted', '  found by frame 0 of CPU 0']);
      const dump = join(dir, 'panic.core');
      await p.run(`::dump ${dump}`);
      const d = KernelDumpTarget.open(dump, { symbols: [kernel] });
      try {
        expect(await session(d).run('::panicinfo')).toEqual(live);
      } finally {
        d.close();
      }
      await expect(p.run('::panicinfo x')).rejects.toThrow('::panicinfo: unexpected argument "x" (usage: ::panicinfo)');
    } finally {
      g.close();
    }
  });
});
