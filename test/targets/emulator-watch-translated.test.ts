// Read and access watchpoints set after the accessing code has been translated and run (a warm
// translation cache and TLB): Unicorn compiles memory accesses without a slow path when no memory
// hook exists, so the hook addon must drop that code when the first memory watchpoint arrives.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { asmGuest64 } from './asm-guest.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-emuwt-'));
const open: EmulatorTarget[] = [];
afterAll(() => open.forEach((t) => t.close()));

// 100,000 passes of a loop that reads `var` (at `rd`) and writes `out` (at `wr`); 5 instructions a pass.
const prog = `
.globl _start, loop, rd, wr, var, out
_start:
  mov $0x80000, %rsp
  xor %ecx, %ecx
loop:
rd:
  mov var(%rip), %rax
wr:
  mov %rax, out(%rip)
  inc %ecx
  cmp $100000, %ecx
  jne loop
  cli
  hlt
.data
.balign 64
var: .quad 7
.balign 4096
out: .quad 0
`;

const build = (): string => asmGuest64(dir, 'rloop', prog);

describe('memory watchpoints added after the code ran', () => {
  const elf = build();

  for (const access of ['read', 'access'] as const) {
    it(`a ${access} watchpoint on a variable a hot loop reads stops at the next read`, () => {
      const t = EmulatorTarget.open(elf, { ramBytes: 4 << 20 });
      open.push(t);
      const m = t.machine;
      // warm up: 1,000 passes translated and run with no memory hook at all
      expect(m.runSync(5_002n)).toBeUndefined();
      const rd = t.symbols.lookup('rd');
      const wr = t.symbols.lookup('wr');
      expect(m.pc(0)).toBe(rd);
      const ev = t.addWatchpoint(t.symbols.lookup('var'), 8, access);
      const stop = m.runSync(1_000_000n);
      expect(stop?.reason).toMatchObject({ kind: 'watchpoint', id: ev.id, access: 'read', addr: t.symbols.lookup('var') });
      // the read completed; the stop is before the next instruction, with the exact count
      expect(m.seq).toBe(5_003n);
      expect(m.pc(0)).toBe(wr);
      // and again on the next pass (5 instructions later)
      expect(m.runSync(1_000_000n)?.reason).toMatchObject({ kind: 'watchpoint', access: 'read' });
      expect(m.seq).toBe(5_008n);
      t.deleteEvent(ev.id);
      expect(m.runSync(1_000_000n)?.reason.kind).toBe('halted');
      expect(m.seq).toBe(2n + 5n * 100_000n + 2n);
    });
  }

  it('a write watchpoint on another page still stops at its write (exact count)', () => {
    const t = EmulatorTarget.open(elf, { ramBytes: 4 << 20 });
    open.push(t);
    const m = t.machine;
    expect(m.runSync(5_002n)).toBeUndefined();
    const ev = t.addWatchpoint(t.symbols.lookup('out'), 8, 'write');
    expect(m.runSync(1_000_000n)?.reason).toMatchObject({ kind: 'watchpoint', id: ev.id, access: 'write' });
    expect(m.seq).toBe(5_004n);
  });
});
