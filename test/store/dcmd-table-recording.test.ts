/**
 * No command can damage a recording: every dcmd of the session's table (builtinModules, read at
 * run time, so a new dcmd is covered without touching this file) runs on a live recording guest
 * with the invocations its usage line describes — before the guest first runs, between runs, and
 * in the recorded past — and the trace then opens and replays to the registers the live guest
 * had at every position it stopped at, and to its RAM at the end.
 *
 * A dcmd may refuse (a DbgError: bad arguments, not at this position, nothing to show); anything
 * else thrown is a bug. Before the guest first runs, every dcmd that moved the guest is undone
 * with `::seek 0; ::discard -f`, so each one really runs at seq 0.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { invocations } from '../helpers/dcmd-invocations.js';
import { ramDiff } from '../helpers/ram-diff.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-dcmd-table-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('every dcmd of the table on a recording guest', () => {
  it('leaves a trace that opens and replays to the live guest (before the first :c, between runs, in the past)', async () => {
    const path = join(dir, 'all.trace');
    const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20 });
    t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', symbols: kernel, chunkTarget: 100_000 }));
    const rev = t.caps.reverse!;
    const dcmds = builtinModules.flatMap((m) => m.dcmds);
    expect(dcmds.length).toBeGreaterThan(40);
    /** Registers of every vCPU at each present position the guest stopped at. */
    const seen = new Map<bigint, Record<string, bigint>[]>();
    const problems: string[] = [];
    const run = async (line: string): Promise<void> => {
      const s = new Session(t, builtinModules);
      try {
        await s.execute(line, { jsonMode: false, line: () => {}, json: () => {}, warn: () => {} });
      } catch (e) {
        if (!(e instanceof DbgError)) problems.push(`${line}: ${(e as Error).stack ?? e}`);
      }
      const b = rev.bounds();
      for (const k of seen.keys()) if (k > b.last) seen.delete(k); // ::discard -f cut the history
      if (b.now === b.last) seen.set(b.now, t.threads().map((th) => Object.fromEntries(t.registers(th.index))));
    };
    const lines = dcmds.flatMap((d) => invocations(d, dir));
    expect(lines).toContain('tasks::wp -rw');
    expect(lines).toContain('::delete all');

    // 1. At seq 0, before the guest ever ran.
    for (const line of lines) {
      await run(line);
      if (rev.bounds().last !== 0n) await run('::seek 0; ::discard -f');
      expect(rev.bounds().last, `after ${line}`).toBe(0n);
    }
    // 2. Between runs: stopped at a breakpoint after a run.
    await run('::delete all; timer_tick::bp; :c');
    expect(rev.bounds().last).toBeGreaterThan(0n);
    for (const line of lines) await run(line);
    // 3. In the recorded past (the guest runs on when the history ahead of P is short).
    await run('::delete all; timer_tick::bp');
    const P = rev.bounds().last / 2n;
    for (const line of lines) {
      if (rev.bounds().last < P + 1000n) await run(':c; :c');
      await run(`::seek ${P}`);
      expect(rev.bounds().now).toBe(P);
      await run(line);
    }
    await run(`::seek ${rev.bounds().last}`);
    expect(problems).toEqual([]);

    const last = rev.bounds().last;
    const ram = Buffer.from(t.machine.ram);
    t.close();
    const r = ReplayTarget.open(path);
    expect(r.caps.reverse!.bounds().last).toBe(last);
    for (const [seq, regs] of [...seen].sort((a, b) => Number(a[0] - b[0]))) {
      await r.caps.reverse!.seek(seq);
      regs.forEach((want, i) => expect(Object.fromEntries(r.registers(i + 1)), `registers of vCPU ${i} at seq ${seq}`).toEqual(want));
    }
    await r.caps.reverse!.seek(last);
    expect(ramDiff(ram, r.machine.ram), 'RAM that differs at the end').toEqual([]);
    r.close();
  }, 240_000);
});
