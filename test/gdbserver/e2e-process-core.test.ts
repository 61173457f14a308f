// A real gdb 13 attached through dbg's GDB server to a gcore'd process core, compared line by line
// with the same gdb reading the same core itself.
import { describe, expect, it } from 'vitest';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch as gdbOnCore, type Debuggee } from '../helpers/debuggee.js';
import { gdbBatch } from './gdb-batch.js';
import { servedTarget } from './served-target.js';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DbgError } from '../../src/common/errors.js';
import { readCString } from '../../src/gdbserver/shared-libraries.js';
import type { Target } from '../../src/targets/target.js';

let d: Debuggee;
const s = servedTarget(async () => {
  d = await debuggee('threads');
  return ProcessCoreTarget.open(d.core, { exe: d.exe });
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
    const via = await gdbBatch(s.server.port, cmds, { file: d.exe });
    const direct = gdbOnCore(d.exe, d.core, cmds);
    const a = comparable(via.stdout);
    expect(a.length).toBeGreaterThan(40);
    // gdb on a core prints frame #0 when it loads it; through the server it prints "0x... in ..." instead.
    const b = comparable(direct);
    expect(a).toEqual(b.slice(b.findIndex((l) => l.startsWith('rax'))));
    expect(via.stdout).toMatch(/in sleep_deeply \(depth=3\) at .*threads\.c:\d+/);
  });

  it('lists the core\'s threads, named by LWP, on the same frames', async () => {
    const via = await gdbBatch(s.server.port, ['info threads'], { file: d.exe });
    const direct = gdbOnCore(d.exe, d.core, ['info threads']);
    const frames = (t: string) => t.split('\n').filter((l) => /^[* ] \d/.test(l)).map((l) => l.replace(/^.*?(0x[0-9a-f]+ in .*)$/, '$1'));
    expect(frames(via.stdout)).toEqual(frames(direct));
    const lwps = s.target.threads().map((t) => t.tid);
    for (const [i, lwp] of lwps.entries()) expect(via.stdout).toContain(`Thread 1.${i + 1} "LWP ${lwp}"`);
  });

  it('sends the auxiliary vector, so gdb relocates the whole PIE (every section, @plt symbols too)', async () => {
    const sections = (t: string) =>
      t.split('\n').filter((l) => /\.(plt|got|rodata|eh_frame|text|data)\b/.test(l)).map((l) => l.replace(/^\s*\[\s*\d+\]\s*/, '').split(/\s+/).slice(0, 2).join(' '));
    const via = await gdbBatch(s.server.port, ['maint info sections'], { file: d.exe });
    const direct = gdbOnCore(d.exe, d.core, ['maint info sections']);
    const v = sections(via.stdout);
    expect(v.length).toBeGreaterThan(4);
    expect(v).toEqual(sections(direct).slice(0, v.length));
    const auxv = s.target.caps.process!.auxv();
    expect(auxv.length % 16).toBe(0);
    expect(auxv.readBigUInt64LE(auxv.length - 16)).toBe(0n); // ends with AT_NULL
  });

  it('gdb with no file finds the executable and its libraries through the server, and nothing else', async () => {
    // no file, sysroot "target:" (gdb's default): everything is read over vFile
    const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile(
        'gdb',
        ['-nx', '-batch', '-iex', 'set pagination off', '-iex', 'set debug-file-directory /nonexistent', '-iex', 'set auto-load off', '-ex', `target remote 127.0.0.1:${s.server.port}`, '-ex', 'info sharedlibrary', '-ex', 'bt 1', '-ex', 'remote get /etc/hostname ' + join(tmpdir(), 'dbg-never-written')],
        { timeout: 60_000, env: { ...process.env, LC_ALL: 'C', TERM: 'dumb' } },
        (_e, stdout, stderr) => resolve({ stdout, stderr }),
      );
    });
    expect(r.stdout + r.stderr).toContain(`Reading symbols from target:${resolve(d.exe)}...`);
    expect(r.stdout).toMatch(/Yes\s+.*libc\.so\.6/);
    expect(r.stdout + r.stderr).toMatch(/#0 .* in \S+/);
    expect(r.stdout + r.stderr).toContain('Remote I/O error: Permission denied');
  });
});

describe('the server reads C strings up to the end of a mapping', () => {
  it('a library name that ends just before an unmapped page comes out whole', () => {
    const m = s.target.mappings().find((x) => x.end - x.start >= 0x1000n)!;
    const name = 'x'.repeat(100); // longer than one 64-byte read, ending 1 byte before the end
    const at = m.end - BigInt(name.length + 1);
    const fake = {
      ...s.target,
      readVirtual: (addr: bigint, n: number) => {
        if (addr < at || addr + BigInt(n) > m.end) throw new DbgError('unmapped', `0x${addr.toString(16)}`);
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = addr + BigInt(i) === m.end - 1n ? 0 : 0x78;
        return b;
      },
    } as unknown as Target;
    expect(readCString(fake, at)).toBe(name);
  });
});
