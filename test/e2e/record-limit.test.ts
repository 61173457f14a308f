/**
 * After DBG_RECORD_MAX stops the recording the guest runs on unrecorded: ::now and ::status say
 * so (the recorded history ends where recording stopped, the guest is beyond it), going back
 * is refused with the reason, and the trace is one self-contained file that replays to there.
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
const dir = mkdtempSync(join(tmpdir(), 'dbg-record-limit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DBG_RECORD_MAX', () => {
  // 4000 bytes: less than the first chunk (stored at the first ::now) holds, memory rows or not
  // (a lazy trace's is ~10 KB, most of it register checkpoints)
  it.each(['eager', 'lazy'])('::now and ::status say the guest runs beyond the recording (%s rows)', (rows) => {
    const trace = join(dir, `lim-${rows}.trace`);
    const r = spawnSync(dbg, ['live', '--emulate', kernel, '-m', '32M', '--wait', '-q', '--record', trace, '-e', 'timer_tick::bp; :c; :c; :c; :c; ::now; :c; ::now; ::status'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, DBG_RECORD_MAX: '4000', DBG_RECORD_ROWS: rows },
    });
    expect(r.status, r.stderr).toBe(0);
    const m = /dbg: recording stopped at seq (\d+): the trace ".*lim-\w+\.trace" reached 4000 bytes \(set DBG_RECORD_MAX=BYTES for more\); the guest runs on unrecorded/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const at = m![1]!;
    const beyond = /recording stopped at (\d+): the guest runs beyond it, at seq (\d+) unrecorded\)$/m.exec(r.stdout);
    expect(beyond, r.stdout).not.toBeNull();
    expect(beyond![1]).toBe(at);
    expect(Number(beyond![2])).toBeGreaterThan(Number(at));
    expect(r.stdout).toContain(`recording to ${trace} stopped at seq ${at}: the guest runs beyond the recording (now at seq ${beyond![2]}, unrecorded)`);
    expect(existsSync(trace + '-wal')).toBe(false);
    const p = spawnSync(dbg, ['replay', trace, '-e', '::now'], { encoding: 'utf8' });
    expect(p.stdout).toContain(`seq ${at} of [0, ${at}]`);
  });
});
