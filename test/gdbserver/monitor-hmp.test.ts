// `monitor` with what QEMU users type (help, info registers, x, xp, gva2gpa), through a real gdb on
// a live emulated guest, beside `monitor ::dcmd`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { qemuSample } from '../helpers/repo.js';
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
    expect(out).toMatch(new RegExp(`^RIP=${rip.toString(16).padStart(16, '0')} RFL=[0-9a-f]{8} \\[[-ODITSZAPC]{9}\\] CPL=0$`, 'm'));
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
});
