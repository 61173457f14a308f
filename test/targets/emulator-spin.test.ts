/**
 * Spin detection (native/emu/emu.c, "Spin detection"): a vCPU that comes back to a pc with its
 * registers as they were gives up the rest of its quantum to a vCPU that could change something.
 * A guest of two vCPUs: vCPU 0 holds a spinlock across many quanta, vCPU 1 spins on it (xchg, no
 * pause: lock-holder preemption, the worst case) and then takes it once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { SPIN_NONE } from '../../src/targets/emulator/emu-hooks.js';
import type { SliceStop } from '../../src/targets/emulator/execution-observer.js';
import { verifyTrace } from '../../src/targets/replay/rerecord.js';
import { AP_START_BLOCK, asmGuest64 } from './asm-guest.js';
import { session } from './emulator-session.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-spin-'));
const open: EmulatorTarget[] = [];
afterAll(() => {
  open.forEach((t) => t.close());
  rmSync(dir, { recursive: true, force: true });
});

/** vCPU 0: start vCPU 1, take the lock, 200,000 rounds of work, release, wait for vCPU 1. */
const contended = asmGuest64(
  dir,
  'contended',
  `
.globl _start
_start:
  movl $1, lock(%rip)
  lea block(%rip), %rax
  mov $0x518, %dx
  outl %eax, %dx
  xor %ecx, %ecx
1: inc %ecx
  addq %rcx, work(%rip)
  cmp $200000, %ecx
  jne 1b
.globl released
released:
  movl $0, lock(%rip)
2: cmpl $0, taken(%rip)
  je 2b
  cli
  hlt
ap:
  mov $1, %eax
.globl spinning
spinning:
3: xchg %eax, lock(%rip)
  test %eax, %eax
  jnz 3b
  movl $1, taken(%rip)
  cli
  hlt
${AP_START_BLOCK}
lock: .long 0
taken: .long 0
work: .quad 0
`,
);

function boot(exact = false): EmulatorTarget {
  const before = process.env.DBG_EMU_EXACT;
  process.env.DBG_EMU_EXACT = exact ? '1' : '0';
  try {
    const t = EmulatorTarget.open(contended, { ramBytes: 8 << 20, cpus: 2 });
    open.push(t);
    return t;
  } finally {
    if (before === undefined) delete process.env.DBG_EMU_EXACT;
    else process.env.DBG_EMU_EXACT = before;
  }
}

/** Run to the end (both vCPUs halted); what each vCPU executed, and the end state. */
function toEnd(t: EmulatorTarget, chunk = 1_000_000n): { executed: bigint[]; state: string } {
  const m = t.machine;
  // each vCPU's cli; hlt stops the run ('halted'); the other goes on at the next run
  for (let i = 0; i < 2000 && m.vcpus.some((v) => v.run !== 'halted'); i++) {
    const stop = m.runSync(chunk);
    if (stop) expect(stop.reason.kind).toBe('halted');
  }
  expect(m.vcpus.map((v) => v.run)).toEqual(['halted', 'halted']);
  const regs = [1, 2].map((n) => ['rip', 'rax', 'rcx'].map((r) => t.registers(n).get(r)!.toString(16)).join(','));
  return { executed: m.vcpus.map((v) => v.executed), state: `${m.seq} ${m.vcpus.map((v) => v.executed).join('/')} ${regs.join(' | ')}` };
}

describe('a vCPU spinning on a lock another vCPU holds', () => {
  it('gives up its quanta: it runs a few instructions a turn, not 10,000', () => {
    const { executed } = toEnd(boot());
    // vCPU 0's part: 4 instructions a round of work, then the wait for vCPU 1
    expect(executed[0]).toBeGreaterThan(800_000n);
    expect(executed[0]).toBeLessThan(820_000n);
    // ~80 turns of vCPU 1 while vCPU 0 holds the lock: round-robin alone gave it 10,000
    // instructions each (as many as vCPU 0's), spin detection a few rounds of its loop
    expect(executed[1]).toBeLessThan(2_000n);
  });

  it('ends its slices as a yield, and the fast engine, the exact engine alone and a run cut anywhere agree', async () => {
    const fast = boot();
    const kinds = new Map<string, number>();
    fast.machine.setObserver({
      attach() {},
      beforeSlice() {},
      afterSlice(vcpu: number, _n: number, stop: SliceStop) {
        const k = `${vcpu}:${stop.kind}`;
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      },
      onInput() {},
    });
    const a = toEnd(fast);
    expect(kinds.get('1:yield')).toBeGreaterThan(50);
    // vCPU 0 yields too, once, where it waits for vCPU 1 to take the lock
    expect(kinds.get('0:yield')).toBe(1);
    expect(toEnd(boot(true)).state).toBe(a.state);
    // slices cut short at odd places (as the debugger's stops cut them) change nothing
    expect(toEnd(boot(), 1_237n).state).toBe(a.state);
    expect(toEnd(boot(true), 4_321n).state).toBe(a.state);
    // a breakpoint inside vCPU 1's spin loop stops it there (the fast engine hands that block to
    // the exact one) a few times, and the run goes on as without it
    const t = boot();
    const bp = t.addBreakpoint(t.symbols.lookup('spinning'));
    for (let i = 0; i < 5; i++) expect((await t.caps.execution!.resume()).reason).toMatchObject({ kind: 'breakpoint', id: bp.id });
    t.deleteEvent(bp.id);
    expect(toEnd(t).state).toBe(a.state);
  });

  it('::discard inside a slice that took a snapshot puts the detector back as it was: the run goes on as unrecorded', async () => {
    // vCPU 1's slices, from a run that tells them (start seq, instructions)
    const probe = boot();
    const slices: { from: bigint; n: number }[] = [];
    let from = 0n;
    probe.machine.setObserver({
      hearsInstructions: false,
      attach() {},
      beforeSlice(_v: number, seq: bigint) {
        from = seq;
      },
      afterSlice(vcpu: number, n: number, stop: SliceStop) {
        if (vcpu === 1 && stop.kind === 'yield' && n >= 4) slices.push({ from, n });
      },
      onInput() {},
    });
    const end = toEnd(probe).state;
    // the tenth yielding slice of vCPU 1, one instruction before its yield: its snapshot is taken
    const at = slices[10]!;
    const S = at.from + BigInt(at.n) - 1n;
    const a = boot();
    a.record(new EmulatorRecorder(join(dir, 'discard.trace'), { guest: 'contended', chunkTarget: 20_000 }));
    expect(a.machine.runSync(at.from + BigInt(at.n) + 50_000n)).toBeUndefined();
    const s = session(a);
    await a.caps.reverse!.seek(S);
    await s.run('::discard -f');
    expect(a.machine.seq).toBe(S);
    const b = boot();
    expect(b.machine.runSync(S)).toBeUndefined();
    const state = (t: EmulatorTarget) => {
      const st = t.machine.saveState({ ram: false });
      return { ...st, vcpus: st.vcpus.map(({ context: _c, ...v }) => v) };
    };
    expect(state(a).scheduler.spin?.[0]).toBe(1n);
    expect(state(a).scheduler.spin?.[4]).not.toBe(SPIN_NONE);
    expect(state(a)).toEqual(state(b));
    expect(toEnd(a).state).toBe(end);
  });

  it('recorded, its slices replay as they ran (dbg traces --verify)', async () => {
    const path = join(dir, 'spin.trace');
    const t = boot();
    let plain: string;
    try {
      t.record(new EmulatorRecorder(path, { guest: 'contended' }));
      plain = toEnd(t).state;
    } finally {
      t.close();
    }
    expect(plain).toBe(toEnd(boot()).state);
    const r = TraceReader.open(path);
    try {
      expect((await verifyTrace(r)).difference).toBeUndefined();
    } finally {
      r.close();
    }
  });
});
