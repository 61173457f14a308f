/**
 * One vocabulary: the CPU of an emulated or recorded machine is `vCPU N` in every message (stops,
 * steps back and forward, ::status), and ::status says what the target is doing: waiting at its
 * first instruction, stopped at a breakpoint, in the recorded past at seq N.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { session } from './emulator-session.js';

const kernel = existsSync(join(repoRoot, 'dumps', 'kernel.elf')) ? join(repoRoot, 'dumps', 'kernel.elf') : join(repoRoot, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-vocabulary-'));
const open: { close(): void }[] = [];
afterAll(() => {
  for (const t of open) t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('vCPU names and ::status', () => {
  it('a live two-vCPU guest: waiting, at a breakpoint on vCPU 1, stepping both ways, in the past', async () => {
    const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20, cpus: 2 });
    open.push(t);
    const trace = join(dir, 'two.trace');
    t.record(new EmulatorRecorder(trace, { guest: 'kernel.elf', symbols: kernel }));
    const s = session(t);
    const waiting = await s.run('::status');
    expect(waiting[1]).toBe('status: waiting at its first instruction at 0x00100020 mb_entry on vCPU 0 (nothing has run yet: :c runs, :s steps)');
    expect(waiting[2]).toBe('thread: 1 of 2 (vCPU 0), pc 0x00100020 mb_entry');

    await s.run('ap_main::bp');
    const stop = (await s.run(':c'))[0]!;
    expect(stop).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]+ ap_main on vCPU 1$/);
    const status = await s.run('::status');
    expect(status[1]).toMatch(/^status: stopped at breakpoint 1 at 0x[0-9a-f]{16} ap_main on vCPU 1$/);
    expect(status[2]).toMatch(/^thread: 2 of 2 \(vCPU 1\), pc /);
    expect((await s.run(':s'))[0]).toMatch(/^stopped: step at 0x[0-9a-f]+ ap_main\+0x[0-9a-f]+ on vCPU 1$/);
    const back = (await s.run('::rstep'))[0]!;
    expect(back).toMatch(/^seq (\d+): ap_main \(0x[0-9a-f]+\) on vCPU 1: step$/);
    const seq = /^seq (\d+)/.exec(back)![1]!;
    const end = t.caps.reverse!.bounds().last;
    const past = await s.run('::status');
    expect(past[1]).toMatch(new RegExp(`^status: in the recorded past at seq ${seq} \\(history ends at seq ${end}; ::seek ${end} returns\\); stopped after a step at 0x[0-9a-f]+ ap_main on vCPU 1$`));
    expect((await s.run(`::seek 0t${end}`)).join('\n')).not.toContain('thread');
    expect((await s.run('::status'))[1]).not.toContain('recorded past');
  });

  it('a recording opened by dbg replay: at the end of history, then in the past', async () => {
    const live = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    const trace = join(dir, 'one.trace');
    live.record(new EmulatorRecorder(trace, { guest: 'kernel.elf', symbols: kernel }));
    const ls = session(live);
    await ls.run('kmain::bp');
    await ls.run(':c');
    live.close();
    const t = ReplayTarget.open(trace);
    open.push(t);
    const s = session(t);
    const end = t.caps.reverse!.bounds().last;
    const status = await s.run('::status');
    expect(status[1]).toBe(`status: at seq ${end} at 0xffffffff80101580 kmain on vCPU 0 (the end of the recorded history)`);
    expect(status[2]).toBe('thread: 1 of 1 (vCPU 0), pc 0xffffffff80101580 kmain');
    expect((await s.run('::rstep'))[0]).toMatch(/^seq \d+: kstart\+0x[0-9a-f]+ \(0x[0-9a-f]+\) on vCPU 0: step$/);
    expect((await s.run('::status'))[1]).toMatch(new RegExp(`^status: in the recorded past at seq ${end - 1n} \\(history ends at seq ${end}; ::seek ${end} returns\\); stopped after a step at `));
  });
});
