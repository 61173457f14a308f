// A real gdb 13 driving a live emulated guest through dbg's GDB server: the QEMU fixture's kernel
// booted in the emulator, with its symbols loaded in gdb. The emulator is deterministic, so the
// whole gdb transcript is a golden file; the assertions below say what each part proves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { join } from 'node:path';
import { qemuSample, repoRoot } from '../helpers/repo.js';
import { gdbBatch } from './gdb-batch.js';
import { RspClient } from './rsp-client.js';
import { expectGolden } from './golden.js';

const kernel = qemuSample('kernel.elf');

describe('gdb on a live emulated guest through dbg', () => {
  let target: EmulatorTarget;
  let server: GdbServerHandle;
  const logs: string[] = [];

  beforeAll(async () => {
    target = EmulatorTarget.open(kernel, { cpus: 2 });
    server = await serveGdb(target, new Session(target, builtinModules), { port: 0, log: (m) => logs.push(m) });
  });

  afterAll(async () => {
    await server?.close();
    target?.close();
  });

  it('break, continue, stepi, watch, rwatch, awatch, info threads, thread N, monitor', async () => {
    const r = await gdbBatch(
      server.port,
      [
        'info threads',
        'break kmain',
        'continue',
        'stepi',
        'stepi',
        'info registers rip',
        'x/2i $pc',
        'watch jiffies',
        'continue',
        'continue',
        'delete',
        'rwatch jiffies',
        'continue',
        'delete',
        'awatch jiffies',
        'continue',
        'delete',
        'info threads',
        'thread 2',
        'info registers rip',
        'thread 1',
        'bt',
        'monitor ::regs',
        'break check_runqueue',
        'continue',
        'bt',
        'p current->comm',
        'set var jiffies = 12345',
        'p jiffies',
        'set var $rax = 7',
        'p $rax',
        'monitor ::regs',
      ],
      { file: kernel },
    );
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain('Thread 1 "vCPU 0" hit Breakpoint 1, kmain (magic=732803074, info=38144) at ./kernel.c:380');
    expect(out).toMatch(/Hardware watchpoint 2: jiffies\n\nOld value = 0\nNew value = 1\n/);
    expect(out).toMatch(/Old value = 1\nNew value = 2\n/);
    expect(out).toMatch(/hit Hardware read watchpoint 3: jiffies\n\nValue = 2\n/);
    expect(out).toMatch(/hit Hardware access \(read\/write\) watchpoint 4: jiffies\n\nOld value = 2\nNew value = 3\n/);
    expect(out).toContain('* 1    Thread 1.1 "vCPU 0" run_ticks () at ./kernel.c:352');
    expect(out).toContain('[Switching to thread 2 (Thread 1.2)]');
    expect(out).toContain('hit Breakpoint 5, check_runqueue () at ./kernel.c:368');
    expect(out).toContain('#1  0xffffffffc0001a8b in kmain');
    expect(out).toContain('$1 = "kworker/u4:1", ');
    // monitor: dbg's ::regs of the stopped guest, printed by gdb (gdb writes target output to stderr)
    expect(r.stderr).toMatch(/%rip\s+= 0xffffffffc00019e3 kmain\+0x2d2/);
    // writes from gdb (memory via X/M, a register via P) reach the guest, as dbg itself sees them
    expect(out).toMatch(/^\$\d+ = 12345$/m);
    expect(out).toMatch(/^\$\d+ = 7$/m);
    expect(r.stderr).toMatch(/%rax\s+= 0x0000000000000007/);
    expect(target.readVirtual(target.symbols.lookup('jiffies'), 8).readBigUInt64LE(0)).toBe(12345n);
    expectGolden('live', out);
  });

  it('a second gdb is refused while one is attached; after it leaves the guest waits where it stopped', async () => {
    const pc = target.status().pc;
    const connected = logs.filter((l) => l.startsWith('gdb connected')).length;
    const first = gdbBatch(server.port, ['shell sleep 2', 'info registers rip'], { file: kernel });
    // the second gdb starts once the first is attached, however slow gdb is to start here
    while (logs.filter((l) => l.startsWith('gdb connected')).length === connected) await new Promise((r) => setTimeout(r, 20));
    const second = await gdbBatch(server.port, ['info registers rip'], { file: kernel });
    expect(second.stderr).toContain('another debugger (127.0.0.1:');
    expect(second.stderr).toContain('is attached to this dbg GDB server; only one at a time');
    const a = await first;
    expect(a.stdout).toContain(`rip            0x${pc.toString(16)}`);
    await server.idle();
    expect(target.status().pc).toBe(pc);
    expect(target.caps.execution!.running).toBe(false);
  });

  it('says why the guest stopped when gdb has no words for it (a halt)', async () => {
    const t = EmulatorTarget.open(kernel);
    const s = await serveGdb(t, undefined, { port: 0, log: () => undefined });
    try {
      const r = await gdbBatch(s.port, ['continue'], { file: kernel });
      expect(r.stderr).toMatch(/^dbg: the guest halted at 0xffffffffc00016c[0-9a-f] \(hlt with interrupts off\)$/m);
      expect(r.stdout).toContain('panic (msg=msg@entry=0xffffffffc000202a "fixture: run queue corrupted") at ./kernel.c:247');
    } finally {
      await s.close();
      t.close();
    }
  });

  it('Ctrl-C in gdb (the 0x03 byte) stops a guest that runs forever, and gdb goes on', async () => {
    // The repository's sample kernel with "nobug" never panics: only an interrupt stops it.
    const sample = join(repoRoot, 'dumps', 'kernel.elf');
    const t = EmulatorTarget.open(sample, { cmdline: 'nobug' });
    const s = await serveGdb(t, undefined, { port: 0, log: () => undefined });
    try {
      // Ctrl-C once gdb's continue has the guest running: well past its first timer tick.
      const run = gdbBatch(s.port, ['continue', 'p jiffies > 0', 'info threads'], { file: sample, interruptWhen: () => t.machine.seq > 20_000_000n });
      const r = await run;
      expect(r.stdout).toContain('Program received signal SIGINT, Interrupt.');
      expect(r.stdout).toMatch(/^\$1 = 1$/m);
      expect(t.status().reason.kind).toBe('interrupted');
    } finally {
      await s.close();
      t.close();
    }
  });
});

describe('threads of a machine are its CPUs', () => {
  it('qXfer:threads names each vCPU with its own core number', async () => {
    const t = EmulatorTarget.open(kernel, { cpus: 2 });
    const s = await serveGdb(t, undefined, { port: 0, log: () => undefined });
    try {
      const c = await RspClient.open(s.port);
      expect(await c.ask('qXfer:threads:read::0,1000')).toBe(
        'l<?xml version="1.0"?><threads><thread id="1" core="0" name="vCPU 0"></thread><thread id="2" core="1" name="vCPU 1"></thread></threads>',
      );
      c.close();
    } finally {
      await s.close();
      t.close();
    }
  });
});
