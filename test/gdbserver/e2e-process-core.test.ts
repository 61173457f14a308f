// A real gdb 13 attached through dbg's GDB server to a gcore'd process core, compared line by line
// with the same gdb reading the same core itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch as gdbOnCore, type Debuggee } from '../helpers/debuggee.js';
import { gdbBatch } from './gdb-batch.js';

let d: Debuggee;
let target: ProcessCoreTarget;
let server: GdbServerHandle;

beforeAll(async () => {
  d = await debuggee('threads');
  target = ProcessCoreTarget.open(d.core, { exe: d.exe });
  server = await serveGdb(target, undefined, { port: 0, log: () => undefined });
});

afterAll(async () => {
  await server?.close();
  target?.close();
});

/** Frames ("#N ..."), register lines and data lines: what must agree; thread headers name threads differently. */
function comparable(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /^(#\d|0x[0-9a-f]+:|\$\d+ = |(r[a-z0-9]+|eflags|[c-g]s)\s+0x)/.test(l));
}

describe('gdb on a process core through dbg', () => {
  it('agrees with gdb on the core: registers, x/, every thread\'s backtrace, globals', async () => {
    const cmds = [
      'info registers',
      'x/8gx $sp',
      'x/2i $pc',
      'thread apply all bt',
      'p global_string',
      'p *list_head',
      'p global_point',
      'thread 3',
      'info registers rip rsp',
      'frame 2',
      'info locals',
    ];
    const via = await gdbBatch(server.port, cmds, { file: d.exe });
    const direct = gdbOnCore(d.exe, d.core, cmds);
    const a = comparable(via.stdout);
    expect(a.length).toBeGreaterThan(40);
    // gdb on a core prints frame #0 when it loads it; through the server it prints "0x... in ..." instead.
    const b = comparable(direct);
    expect(a).toEqual(b.slice(b.findIndex((l) => l.startsWith('rax'))));
    expect(via.stdout).toMatch(/in sleep_deeply \(depth=3\) at .*threads\.c:\d+/);
  });

  it('lists the core\'s threads, named by LWP, on the same frames', async () => {
    const via = await gdbBatch(server.port, ['info threads'], { file: d.exe });
    const direct = gdbOnCore(d.exe, d.core, ['info threads']);
    const frames = (t: string) => t.split('\n').filter((l) => /^[* ] \d/.test(l)).map((l) => l.replace(/^.*?(0x[0-9a-f]+ in .*)$/, '$1'));
    expect(frames(via.stdout)).toEqual(frames(direct));
    const lwps = target.threads().map((t) => t.tid);
    for (const [i, lwp] of lwps.entries()) expect(via.stdout).toContain(`Thread 1.${i + 1} "LWP ${lwp}"`);
  });
});
