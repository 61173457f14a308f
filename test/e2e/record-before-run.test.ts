/**
 * A history query before the guest first runs (the trace has to be opened at seq 0, so a chunk of
 * no instruction is stored) must not damage the recording: the run after it is recorded whole and
 * `dbg replay` opens it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dbg = join(root, 'bin', 'dbg');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-record-before-run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dbg live: commands before the first :c', () => {
  it.each(['::status', '::now', '::traceinfo', '::timeline', '::calls'])('%s; :c records the whole run and dbg replay opens it', (cmd) => {
    const trace = join(dir, `${cmd.slice(2)}.trace`);
    const r = spawnSync(dbg, ['live', '--emulate', kernel, '-m', '32M', '--wait', '-q', '--record', trace, '-e', `${cmd}; :c; ::now`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/UNIQUE|internal error/);
    expect(r.status).toBe(0);
    const live = [...r.stdout.matchAll(/^seq (\d+) of \[0, \1\]/gm)].at(-1);
    expect(live, r.stdout).not.toBeNull();
    const p = spawnSync(dbg, ['replay', trace, '-e', '::now; ::seek 0; ::now'], { encoding: 'utf8', timeout: 60_000 });
    expect(p.stderr).toBe('');
    expect(p.stdout).toContain(`seq ${live![1]} of [0, ${live![1]}] (${live![1]} instructions recorded; 0 after now)`);
    expect(p.stdout).toContain(`seq 0 of [0, ${live![1]}]`);
  });
});

describe('dbg live: a register write at seq 0, then back to it', () => {
  it('the history opened before the write is not reused after it; a step from the live position runs live', () => {
    // ::seek to the present opened the trace at seq 0; the write records an input at the same seq,
    // and ::rcont showed the state from before it (r15 = 0), then :s stopped at "the end of history".
    const trace = join(dir, 'setreg.trace');
    const r = spawnSync(dbg, ['live', '--emulate', kernel, '-m', '32M', '--wait', '-q', '--record', trace, '-e', '::seek 0t0; 0x1::setreg r15; ::rcont; <r15=K; :s; ::now; <r15=K'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toMatch(/^dbg: recording to [^\n]*\n$/);
    expect(r.status).toBe(0);
    const out = r.stdout.split('\n').map((l) => l.trim());
    expect(out).toEqual([
      'seq 0: mb_entry (0x100020) on vCPU 0: none',
      'r15 = 0x0000000000000001',
      'seq 0: mb_entry (0x100020) on vCPU 0: start of the recorded history',
      '1',
      'stopped: step at 0x00100021 mb_entry+0x1 on vCPU 0',
      'seq 1 of [0, 1] (1 instructions recorded; 0 after now)',
      '1',
      '',
    ]);
    const p = spawnSync(dbg, ['replay', trace, '-e', '::seek 0; <r15=K'], { encoding: 'utf8', timeout: 60_000 });
    expect(p.stderr).toBe('');
    expect(p.stdout.trim().split('\n').at(-1)!.trim()).toBe('1');
  });
});
