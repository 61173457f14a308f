/**
 * Deliberate entry into the debugger (KMDB's): a guest int3 that the guest has no IDT gate for
 * stops the run as a guest breakpoint (one it has a gate for goes to its handler), and so does a
 * write to the dbg machine's debug port 0x520; through the GDB server gdb sees SIGTRAP with a
 * console note saying why.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serveGdb } from '../../src/gdbserver/gdb-server.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { session } from './emulator-session.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-entry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// int3 with an empty IDT, out 0x42 to port 0x520, then an IDT whose vector 3 gate sets rbx = 7.
const guest = `
.globl _start
_start:
  int3
  mov $0x42, %eax
  mov $0x520, %dx
  outl %eax, %dx
  lea handler(%rip), %rax
  mov %ax, idt+48(%rip)
  mov %cs, %cx
  mov %cx, idt+50(%rip)
  movb $0x8e, idt+53(%rip)
  shr $16, %rax
  mov %ax, idt+54(%rip)
  shr $16, %rax
  mov %eax, idt+56(%rip)
  lidt idtr(%rip)
  int3
  cli
  hlt
handler:
  mov $7, %ebx
  iretq
.data
.align 16
idt: .skip 64
idtr: .word 63
  .quad idt
`;

function build(): string {
  const s = join(dir, 'entry.S');
  const k = join(dir, 'entry.elf');
  writeFileSync(s, guest);
  execFileSync('gcc', ['-nostdlib', '-static', '-no-pie', '-Wl,-Ttext=0x100000', '-o', k, s]);
  return k;
}

describe('deliberate entry into the debugger', () => {
  const kernel = build();

  it('an unhandled int3 and the debug port stop as guest breakpoints; a handled int3 goes to the guest', async () => {
    const t = EmulatorTarget.open(kernel, { ramBytes: 8 << 20 });
    try {
      const s = session(t);
      expect(await s.run(':c')).toEqual(['stopped: guest breakpoint (int3 with no guest handler) at 0x0000000000100001 _start+0x1 on vCPU 0']);
      expect(await s.run('::status')).toContain('status: stopped by the guest (int3) at 0x0000000000100001 _start+0x1 on vCPU 0');
      expect(await s.run(':c')).toEqual(['stopped: guest breakpoint (debug port 0x520, value 0x42) at 0x000000000010000b _start+0xb on vCPU 0']);
      expect((await s.run(':c'))[0]).toMatch(/^stopped: halted \(hlt with interrupts off\)/);
      expect(t.registers(1).get('rbx')).toBe(7n);
    } finally {
      t.close();
    }
  });

  it('gdb sees SIGTRAP and a note naming the entry', async () => {
    const t = EmulatorTarget.open(kernel, { ramBytes: 8 << 20 });
    const server = await serveGdb(t, undefined, { port: 0, log: () => {} });
    try {
      const r = await gdbBatch(server.port, ['continue', 'continue'], { file: kernel });
      expect(r.stdout + r.stderr).toContain('dbg: the guest entered the debugger at 0x100001 (int3 with no guest handler)');
      expect(r.stdout + r.stderr).toContain('dbg: the guest entered the debugger at 0x10000b (debug port 0x520, value 0x42)');
      expect(r.stdout).toMatch(/received signal SIGTRAP/);
    } finally {
      await server.close();
      t.close();
    }
  });
});
