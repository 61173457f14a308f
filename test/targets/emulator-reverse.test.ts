/**
 * Reverse execution on a LIVE recorded guest (the sample kernel on the dbg machine, its real
 * recorder and SQLite trace): reverse steps land where forward steps had been (all registers and
 * the stack), ::rcont goes back to earlier breakpoint hits and write-watchpoint triggers (memory
 * before the write, pc at the writer, as an unrecorded machine run to that seq shows), going
 * forward replays to the end of history and then runs live, writes in the past are refused.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Registers } from '../../src/arch/arch.js';
import { DbgError } from '../../src/common/errors.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { session } from './emulator-session.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-live-reverse-'));
const open: EmulatorTarget[] = [];
afterAll(() => {
  for (const t of open) t.close();
  rmSync(dir, { recursive: true, force: true });
});

function recorded(name: string): EmulatorTarget {
  const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
  open.push(t);
  t.record(new EmulatorRecorder(join(dir, `${name}.trace`), { guest: 'kernel.elf', symbols: kernel, chunkTarget: 100_000 }));
  return t;
}

/** Registers as a plain object (compared much faster than Maps). */
const regsOf = (t: EmulatorTarget): Record<string, bigint> => Object.fromEntries(t.registers(1));
const seqOf = (t: EmulatorTarget): bigint => t.caps.reverse!.bounds().now;
const u64 = (t: EmulatorTarget, a: bigint): bigint => t.readVirtual(a, 8).readBigUInt64LE(0);

describe('reverse execution on a live recorded guest', () => {
  it('::rstep walks back through 300 forward steps exactly (registers and stack); the live machine stays put', async () => {
    const t = recorded('steps');
    const s = session(t);
    await s.run('log_append::bp');
    expect((await s.run(':c'))[0]).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]+ log_append on vCPU 0$/);
    const N = 300;
    const fwd: { regs: Record<string, bigint>; stack: Buffer; seq: bigint }[] = [];
    const snap = () => {
      const regs = regsOf(t);
      return { regs, stack: t.readVirtual(regs.rsp!, 64), seq: seqOf(t) };
    };
    fwd.push(snap());
    for (let i = 0; i < N; i++) {
      await s.run(':s');
      fwd.push(snap());
    }
    const end = seqOf(t);
    const liveRip = t.machine.pc(0);
    for (let i = N - 1; i >= 0; i--) {
      const out = await s.run('::rstep');
      expect(out[0]).toMatch(new RegExp(`^seq ${fwd[i]!.seq}: `));
      expect(seqOf(t)).toBe(fwd[i]!.seq);
      expect(regsOf(t)).toEqual(fwd[i]!.regs);
      expect(t.readVirtual(fwd[i]!.regs.rsp!, 64).equals(fwd[i]!.stack)).toBe(true);
      expect(t.status().pc).toBe(fwd[i]!.regs.rip);
    }
    expect(t.machine.pc(0)).toBe(liveRip); // the guest itself never moved
    expect(t.caps.reverse!.bounds()).toEqual({ first: 0n, last: end, now: fwd[0]!.seq });
    expect((await s.run('::now'))[0]).toBe(`seq ${fwd[0]!.seq} of [0, ${end}] (${end} instructions recorded; ${N} after now)`);
    // forward steps in the past replay the trace, and match too
    for (let i = 1; i <= 5; i++) {
      await s.run(':s');
      expect(regsOf(t)).toEqual(fwd[i]!.regs);
    }
  });

  it('::rcont back to earlier breakpoint hits; :c forward replays to the end of history, then runs live', async () => {
    const t = recorded('bp');
    const s = session(t);
    await s.run('log_append::bp');
    const hits: { seq: bigint; regs: Registers }[] = [];
    for (let i = 0; i < 3; i++) {
      expect((await s.run(':c'))[0]).toMatch(/^stopped: breakpoint 1 at .* log_append on vCPU 0$/);
      hits.push({ seq: seqOf(t), regs: t.registers(1) });
    }
    expect(t.events.get(1)!.hits).toBe(3);
    const end = seqOf(t);
    for (let i = 1; i >= 0; i--) {
      expect((await s.run('::rcont'))[0]).toBe(`seq ${hits[i]!.seq}: log_append (0x${hits[i]!.regs.get('rip')!.toString(16)}) on vCPU 0: breakpoint 1`);
      expect(t.registers(1)).toEqual(hits[i]!.regs);
      expect(t.status().reason).toMatchObject({ kind: 'breakpoint', id: 1 });
    }
    // forward: the recorded hit 2, then hit 3 at the end of history (where the guest had stopped), then live
    expect((await s.run(':c'))[0]).toMatch(/^stopped: breakpoint 1 at .* log_append on vCPU 0$/);
    expect(seqOf(t)).toBe(hits[1]!.seq);
    expect(t.registers(1)).toEqual(hits[1]!.regs);
    await s.run(':c');
    expect(seqOf(t)).toBe(end);
    expect(t.registers(1)).toEqual(hits[2]!.regs);
    expect(t.caps.reverse!.bounds()).toEqual({ first: 0n, last: end, now: end });
    await s.run(':c'); // live: a fourth hit, history grows past the old end
    expect(seqOf(t)).toBeGreaterThan(end);
    expect(t.caps.reverse!.bounds().last).toBe(t.machine.seq);
    expect(t.events.get(1)!.hits).toBe(4);
    expect(t.status().reason).toMatchObject({ kind: 'breakpoint', id: 1 });
    // and the new part of history is there to go back into
    await s.run('::rcont');
    expect(seqOf(t)).toBe(end);
  });

  it('::rcont to write watchpoint triggers: memory before the write, pc at the writer (checked against an unrecorded run)', async () => {
    const t = recorded('wp');
    const s = session(t);
    const tasks = t.symbols.lookup('tasks');
    await s.run('tasks::wp -w -L 8');
    const stops: { seq: bigint; after: bigint }[] = [];
    let before: bigint | undefined; // (paging is off at the start: the kernel's address is not mapped yet)
    const befores: (bigint | undefined)[] = [];
    for (let i = 0; i < 2; i++) {
      expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 1 \(write of /);
      befores.push(before);
      before = u64(t, tasks);
      stops.push({ seq: seqOf(t), after: before });
    }
    for (let i = 1; i >= 0; i--) {
      const out = await s.run('::rcont');
      const writer = stops[i]!.seq - 1n;
      expect(out[0]).toMatch(new RegExp(`^seq ${writer}: \\S+ \\(0x[0-9a-f]+\\) on vCPU 0: write watchpoint 1 on 0x${tasks.toString(16)} \\(8 bytes\\): memory as before the write$`));
      const ref = await unrecorded(writer);
      expect(t.status().pc).toBe(ref.pc);
      expect(u64(t, tasks)).toBe(ref.tasks);
      if (befores[i] !== undefined) expect(u64(t, tasks)).toBe(befores[i]);
      // ::whowrote from here sees the write before this one (or none)
      const ww = await s.run('tasks,8::whowrote');
      expect(ww[0]).toMatch(i === 1 ? new RegExp(`^seq ${stops[0]!.seq - 1n} `) : /not written in the recorded history before now|host/);
    }
    // forward again: the first trigger (replayed), the second one at the end of history, then live
    await s.run(':c');
    expect(seqOf(t)).toBe(stops[0]!.seq);
    expect(u64(t, tasks)).toBe(stops[0]!.after);
    await s.run(':c');
    expect(seqOf(t)).toBe(stops[1]!.seq);
    expect(t.caps.reverse!.bounds().last).toBe(stops[1]!.seq);
    await s.run(':c');
    expect(seqOf(t)).toBeGreaterThan(stops[1]!.seq);
  });

  it('::step over / out and ::rstep over in the recorded past agree with an unrecorded run', async () => {
    const ref = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    open.push(ref);
    const r = session(ref);
    await r.run('log_append::bp; :c');
    const hit = { seq: ref.status().seq!, pc: ref.status().pc };
    await r.run('::step out');
    const out = { seq: ref.status().seq!, regs: Object.fromEntries(ref.registers(1)) };
    const t = recorded('past-steps');
    const s = session(t);
    await s.run('log_append::bp; :c; :c; ::rcont');
    expect(seqOf(t)).toBe(hit.seq);
    expect((await s.run('::step out'))[0]).toMatch(/^stopped: step at 0x[0-9a-f]+ task_logger\+0x[0-9a-f]+ on vCPU 0$/);
    expect(t.status().reason.kind).toBe('step');
    expect(seqOf(t)).toBe(out.seq);
    expect(regsOf(t)).toEqual(out.regs);
    // back over the call: at the call instruction; forward over it again: where step out was
    const rs = await s.run('::rstep over');
    expect(rs[0]).toMatch(/^seq \d+: task_logger\+0x[0-9a-f]+ \(0x[0-9a-f]+\) on vCPU 0: step$/);
    expect(seqOf(t)).toBe(hit.seq - 1n);
    // a breakpoint inside the callee stops a step over (as gdb's next does)
    expect((await s.run('::step over'))[0]).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]+ log_append on vCPU 0$/);
    expect(seqOf(t)).toBe(hit.seq);
    await s.run('::rstep; ::delete 1; ::step over');
    expect(seqOf(t)).toBe(out.seq);
    expect(regsOf(t)).toEqual(out.regs);
    expect(t.status().reason.kind).toBe('step');
    expect(await s.run('::events')).toEqual(['no breakpoints or watchpoints']); // no step breakpoints left
    expect(t.events.size).toBe(0);
  });

  it('refuses writes in the past with a clear message; after ::seek to the end they work again', async () => {
    const t = recorded('write');
    const s = session(t);
    await s.run('log_append::bp');
    await s.run(':c');
    const end = seqOf(t);
    await s.run('::rstep');
    const msg = `refused: the view is at seq ${end - 1n}, in the recorded past (the guest is at ${end}); changing the past would discard the 1 instructions recorded after it. Go back to the present first (::seek ${end}), or make seq ${end - 1n} the present with ::discard (deletes the recorded future)`;
    await expect(s.run('0x1234::setreg rax')).rejects.toThrow(`writing register rax ${msg}`);
    let err: unknown;
    try {
      t.caps.writeMemory!.writeVirtual(t.symbols.lookup('tasks'), Buffer.alloc(8));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DbgError);
    expect((err as DbgError).code).toBe('state');
    expect((err as DbgError).message).toBe(`writing memory ${msg}`);
    await expect(s.run(`::dump ${join(dir, 'past.core')}`)).rejects.toThrow(`cannot write a core of the recorded past (seq ${end - 1n})`);
    await expect(s.run(`::seek ${end + 1n}`)).rejects.toThrow(`seq ${end + 1n} is outside the recorded history [0, ${end}]`);
    await s.run(`::seek ${end}`);
    expect(t.status().reason).toMatchObject({ kind: 'breakpoint', id: 1 });
    await s.run('0x1234::setreg rax');
    expect(t.registers(1).get('rax')).toBe(0x1234n);
  });

  it('the same ::bp, ::events, :c, ::step out, ::delete serve a replay of the trace (and agree with the live run)', async () => {
    const t = recorded('shared');
    const s = session(t);
    await s.run('log_append::bp');
    const live: { seq: bigint; pc: bigint }[] = [];
    await s.run(':c');
    live.push({ seq: seqOf(t), pc: t.status().pc });
    expect((await s.run('::step out'))[0]).toMatch(/^stopped: step at 0x[0-9a-f]+ \S+ on vCPU 0$/);
    expect(t.status().reason.kind).toBe('step');
    live.push({ seq: seqOf(t), pc: t.status().pc });
    await s.run(':c');
    live.push({ seq: seqOf(t), pc: t.status().pc });
    const path = t.caps.history!.path;
    t.close();
    const r = ReplayTarget.open(path, { symbols: [kernel] });
    try {
      const p = session(r);
      await p.run('::seek 0');
      expect(await p.run('log_append::bp')).toEqual([expect.stringMatching(/^1: breakpoint at 0x[0-9a-f]+ log_append; hits 0$/)]);
      expect((await p.run(':c'))[0]).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]+ log_append on vCPU 0$/);
      expect({ seq: r.status().seq, pc: r.status().pc }).toEqual(live[0]);
      expect((await p.run('::step out'))[0]).toMatch(/^stopped: step at /);
      expect({ seq: r.status().seq, pc: r.status().pc }).toEqual(live[1]);
      // the live guest's last stop is the end of the trace (its instruction never ran in the recording)
      expect((await p.run(':c'))[0]).toBe(`stopped: end of the recorded history (seq ${live[2]!.seq}) at 0x${live[2]!.pc.toString(16)} log_append on vCPU 0`);
      expect({ seq: r.status().seq, pc: r.status().pc }).toEqual(live[2]);
      await p.run('::rcont');
      expect(r.status().seq).toBe(live[0]!.seq);
      expect(await p.run('::events')).toEqual([expect.stringMatching(/^1: breakpoint at .* log_append; hits 1$/)]); // forward stops
      await p.run('::delete all');
      expect(await p.run('::events')).toEqual(['no breakpoints or watchpoints']);
      expect((await p.run(':c'))[0]).toMatch(/^stopped: end of the recorded history \(seq \d+\) at /);
      await expect(p.run('::delete 7')).rejects.toThrow('no breakpoint or watchpoint with id 7 (see ::events)');
    } finally {
      r.close();
    }
  });

  it('after the recording stopped at its size limit, going back is refused with the reason', async () => {
    const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    open.push(t);
    const notes: string[] = [];
    t.record(new EmulatorRecorder(join(dir, 'full.trace'), { chunkTarget: 10_000, maxBytes: 1, onLimit: (m) => notes.push(m) }));
    const s = session(t);
    await s.run('log_append::bp; :c');
    expect(notes[0]).toMatch(/^recording stopped at seq \d+/);
    const stopped = /^recording stopped at seq (\d+)/.exec(notes[0]!)![1];
    await expect(s.run('::rstep')).rejects.toThrow(`cannot step back: recording stopped at seq ${stopped} (the trace reached its size limit or could not be written) and the guest ran on to ${t.machine.seq} unrecorded`);
  });

  it('without a recorder there is no reverse capability', async () => {
    const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    open.push(t);
    expect(t.caps.reverse).toBeUndefined();
    await expect(session(t).run('::rstep')).rejects.toThrow(/reverse execution/);
  });
});

/** pc and tasks after exactly `n` instructions of an unrecorded machine (the independent answer). */
async function unrecorded(n: bigint): Promise<{ pc: bigint; tasks: bigint }> {
  const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
  try {
    await t.machine.run({ vcpu: 0, count: Number(n) });
    expect(t.machine.seq).toBe(n);
    return { pc: t.machine.pc(0), tasks: u64(t, t.symbols.lookup('tasks')) };
  } finally {
    t.close();
  }
}
