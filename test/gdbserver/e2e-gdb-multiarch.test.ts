// gdb-multiarch (Debian's gdb built for every architecture) through dbg's GDB server: with no
// `set architecture` it takes x86-64 from dbg's target description, and prints what the native
// gdb prints for the same commands, on a kernel dump and on a live emulated guest.
import { afterEach, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import type { Target } from '../../src/targets/target.js';
import { qemuSample } from '../helpers/repo.js';
import { gdbBatch } from './gdb-batch.js';

const kernel = qemuSample('kernel.elf');
const opened: { target: Target; server: GdbServerHandle }[] = [];

async function serve(target: Target): Promise<number> {
  const server = await serveGdb(target, undefined, { port: 0, log: () => undefined });
  opened.push({ target, server });
  return server.port;
}

afterEach(async () => {
  for (const { target, server } of opened.splice(0)) {
    await server.close();
    target.close();
  }
});

/** The same commands through gdb and gdb-multiarch, each against its own fresh target. */
async function both(open: () => Target, cmds: string[]): Promise<{ gdb: string; multi: string }> {
  const a = await gdbBatch(await serve(open()), cmds, { file: kernel });
  const b = await gdbBatch(await serve(open()), cmds, { file: kernel, gdb: 'gdb-multiarch' });
  expect(b.code, b.stderr).toBe(0);
  return { gdb: a.stdout + a.stderr, multi: b.stdout + b.stderr };
}

describe('gdb-multiarch through dbg', () => {
  it('a kernel dump: architecture, threads, registers, backtrace, memory as the native gdb shows them', async () => {
    const { gdb, multi } = await both(() => KernelDumpTarget.open(qemuSample('vmcore.elf')), [
      'show architecture',
      'info threads',
      'info registers rip rsp eflags cr0 cr3',
      'bt',
      'x/4gx $rsp',
      'p jiffies',
      'stepi',
    ]);
    expect(multi).toContain('The target architecture is set to "auto" (currently "i386:x86-64").');
    expect(multi).toMatch(/^#0 {2}panic \(msg=msg@entry=0xffffffffc000202a "fixture: run queue corrupted"\) at \.\/kernel\.c:247$/m);
    expect(multi).toMatch(/^\$1 = 200000$/m);
    expect(multi).toContain('dbg: kernel dump "vmcore.elf" cannot run: execution control is not supported by this target');
    expect(multi).toBe(gdb);
  });

  it('a live guest: break, continue, stepi, watch, x/, threads as the native gdb does them', async () => {
    const { gdb, multi } = await both(() => EmulatorTarget.open(kernel, { cpus: 2 }), [
      'watch jiffies',
      'continue',
      'delete',
      'break check_runqueue',
      'continue',
      'info threads',
      'stepi',
      'info registers rip',
      'x/2i $pc',
      'delete',
      'continue',
    ]);
    // set before the guest maps its kernel: gdb could not read the old value
    expect(multi).toMatch(/Thread 1 "vCPU 0" hit Hardware watchpoint 1: jiffies\n\nOld value = <unreadable>\nNew value = 1\n/);
    expect(multi).toMatch(/Thread 1 "vCPU 0" hit Breakpoint 2, check_runqueue \(\) at \.\/kernel\.c:368/);
    expect(multi).toMatch(/^\* 1 +Thread 1\.1 "vCPU 0" check_runqueue \(\) at \.\/kernel\.c:368$/m);
    expect(multi).toMatch(/^rip +0xffffffffc00016c9 +0xffffffffc00016c9 <check_runqueue\+7>$/m);
    expect(multi).toMatch(/Thread 1 "vCPU 0" received signal SIGINT, Interrupt\.\npanic \(/);
    expect(multi).toContain('dbg: the guest halted at 0xffffffffc00016c0 (hlt with interrupts off)');
    expect(multi).toBe(gdb);
  });
});
