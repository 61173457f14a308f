// `monitor` with what QEMU users type (help, info registers, info mem, info tlb, x, xp, gva2gpa),
// through a real gdb on a live emulated guest, beside `monitor ::dcmd`; info mem and info tlb
// against QEMU's own monitor (through its gdbstub's qRcmd) on the same kernel at the same stop.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hmpCommand } from '../../src/gdbserver/monitor-hmp.js';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { qemuGdbstub } from '../helpers/i386-guest.js';
import { qemuSample } from '../helpers/repo.js';
import { FakeTarget } from './fake-target.js';
import { gdbBatch } from './gdb-batch.js';

const kernel = qemuSample('kernel.elf');

describe('QEMU monitor commands over gdb', () => {
  let target: EmulatorTarget;
  let server: GdbServerHandle;

  beforeAll(async () => {
    target = EmulatorTarget.open(kernel, {});
    server = await serveGdb(target, new Session(target, builtinModules), { port: 0, log: () => undefined });
  });

  afterAll(async () => {
    await server?.close();
    target?.close();
  });

  it('help, info registers, x, xp and gva2gpa answer as QEMU does; ::dcmd still runs dbg commands', async () => {
    const jiffies = target.symbols.find('jiffies')!.addr;
    // run the guest until its page tables map the kernel; it stays there for the next gdb
    await gdbBatch(server.port, ['break check_runqueue', 'continue'], { file: kernel });
    const gpa = target.caps.physical!.translate(jiffies, 1).phys!;
    const r = await gdbBatch(
      server.port,
      [
        'monitor help',
        'monitor info registers',
        `monitor x /2xg 0x${jiffies.toString(16)}`,
        `monitor gva2gpa 0x${jiffies.toString(16)}`,
        `monitor xp /2xg 0x${gpa.toString(16)}`,
        'monitor x /1xw 0x7fff00000000',
        'monitor ::status',
      ],
      { file: kernel },
    );
    const out = r.stdout + r.stderr;
    expect(out).toContain('info registers             -- the registers of the selected CPU, as QEMU shows them');
    const rip = target.registers(1).get('rip')!;
    expect(out).toMatch(new RegExp(`^RIP=${rip.toString(16).padStart(16, '0')} RFL=[0-9a-f]{8} \\[[-DOSZAPC]{7}\\] CPL=0 II=0 A20=1 SMM=0 HLT=0$`, 'm'));
    expect(out).toMatch(/^RAX=[0-9a-f]{16} RBX=[0-9a-f]{16} RCX=[0-9a-f]{16} RDX=[0-9a-f]{16}$/m);
    expect(out).toMatch(/^CR0=[0-9a-f]{8} CR2=[0-9a-f]{16} CR3=[0-9a-f]{16} CR4=[0-9a-f]{8}$/m);
    const mem = target.readVirtual(jiffies, 16);
    const line = `: 0x${mem.readBigUInt64LE(0).toString(16).padStart(16, '0')} 0x${mem.readBigUInt64LE(8).toString(16).padStart(16, '0')}`;
    expect(out).toContain(`${jiffies.toString(16).padStart(16, '0')}${line}`);
    expect(out).toContain(`gpa: 0x${gpa.toString(16)}`);
    expect(out).toContain(`${gpa.toString(16).padStart(16, '0')}${line}`);
    expect(out).toMatch(/^dbg: .*0x7fff00000000.*$/m); // an unmapped address: one line, the session goes on
    expect(out).toContain('debugging emulated guest "kernel.elf"');
  });

  it('info mem, info tlb and info registers print what QEMU 7.2 prints for the same guest at the same stop', async () => {
    const cmds = ['break check_runqueue', 'continue', 'monitor info mem', 'monitor info tlb', 'monitor info registers'];
    const fresh = EmulatorTarget.open(kernel, {});
    const ours = await serveGdb(fresh, undefined, { port: 0, log: () => undefined });
    const qemu = await qemuGdbstub('x86_64', kernel);
    try {
      const a = await gdbBatch(qemu.port, cmds, { file: kernel });
      const b = await gdbBatch(ours.port, cmds, { file: kernel });
      // gdb prints monitor output on stderr: info mem's lines are START-END, info tlb's VADDR: PADDR
      // (QEMU's monitor ends its lines with \r\n, a terminal's habit dbg does not copy)
      const lines = (text: string, re: RegExp): string[] => text.split(/\r?\n/).filter((l) => re.test(l));
      for (const re of [/^[0-9a-f]{16}-[0-9a-f]{16} /, /^[0-9a-f]{16}: [0-9a-f]{16} /]) {
        const q = lines(a.stderr, re);
        expect(q.length, `QEMU: ${a.stderr}`).toBeGreaterThan(4);
        expect(lines(b.stderr, re)).toEqual(q);
      }
      // info registers: every line from RAX to the last XMM pair
      const regs = (text: string): string[] => lines(text, /^(R[A-Z0-9 ]{2}=|[A-Z]{2} =|LDT=|TR =|[GI]DT=|CR0=|DR[06]=|EFER=|FCW=|FPR\d=|XMM\d\d=)/);
      expect(regs(a.stderr).length, `QEMU: ${a.stderr}`).toBe(32);
      expect(regs(b.stderr)).toEqual(regs(a.stderr));
      const b2 = b.stderr;
      // the kernel's own mappings, as the sample maps them (read-only text, the direct map, 2 MiB pages)
      expect(b2).toContain('ffffffffc0000000-ffffffffc0003000 0000000000003000 -r-\n');
      expect(b2).toMatch(/^ffff888000000000: 0000000000000000 X-P-A---W$/m);
    } finally {
      qemu.stop();
      await ours.close();
      fresh.close();
    }
  }, 60_000);

  it('info mem on a target without page tables is one line naming what is missing', () => {
    const core = new FakeTarget({});
    expect(() => hmpCommand(core, 1, 'info mem')).toThrow(/^reading the page tables \(no CR3\) is not supported by /);
    expect(() => hmpCommand(core, 1, 'info tlb')).toThrow(/^reading the page tables \(no CR3\) is not supported by /);
  });
});
