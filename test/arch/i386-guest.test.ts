// A 32-bit multiboot guest (test/fixtures-src/i386/) under dbg's emulator, against QEMU 7.2's
// gdbstub on the same ELF: dbg's target is i386 while the CPU runs 32-bit code (::regs, ::dis,
// ::stack, 4-byte pointers), gdb with the ELF32 file connects to dbg's GDB server with no
// `set architecture` and prints what it prints through qemu-system-i386, and once the guest has
// switched to long mode the target is x86-64, as qemu-system-x86_64 reports it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { i386Guest, qemuGdbstub } from '../helpers/i386-guest.js';
import { session } from '../targets/emulator-session.js';

const guest = i386Guest();

/** gdb's answers from the breakpoint on: the lines before it differ (QEMU starts in its BIOS). */
function fromBreakpoint(stdout: string): string {
  const at = stdout.indexOf('\nBreakpoint 1, ');
  return stdout.slice(at + 1).replace(/\[Inferior 1 \(process \d+\) detached\]\n?/, '');
}

const atStopHere = ['break stop_here', 'continue', 'info registers', 'bt', 'x/4wx &words', 'x/3i $pc', 'p $pc', 'p/x $sp'];

describe('an i386 guest in 32-bit protected mode', () => {
  let target: EmulatorTarget;
  let server: GdbServerHandle;
  let qemu: string;

  beforeAll(async () => {
    const q = await qemuGdbstub('i386', guest);
    try {
      qemu = fromBreakpoint((await gdbBatch(q.port, atStopHere, { file: guest })).stdout);
    } finally {
      q.stop();
    }
    target = EmulatorTarget.open(guest, { ramBytes: 64 << 20 });
    server = await serveGdb(target, new Session(target, builtinModules), { port: 0, log: () => {} });
  });

  afterAll(async () => {
    await server?.close();
    target?.close();
  });

  it('gdb with the ELF32 file connects with no set architecture and sees what QEMU shows', async () => {
    const r = await gdbBatch(server.port, atStopHere, { file: guest });
    expect(r.stderr).not.toMatch(/not compatible|badly formatted/);
    const dbg = fromBreakpoint(r.stdout);
    expect(dbg).toMatch(/^eip +0x1000[0-9a-f]{2} +0x1000[0-9a-f]{2} <stop_here>$/m);
    expect(dbg).toContain('cr0            0x13                [ ET MP PE ]');
    expect(dbg).toMatch(/^#1  0x0010[0-9a-f]{4} in level3/m);
    expect(dbg).toMatch(/<words>:\t0x11223344\t0x55667788\t0x99aabbcc\t0xddeeff00/);
    // Every line the same as through QEMU's stub: info registers (eax..efer with flag names),
    // bt, x/4wx, x/3i, $pc, $sp. QEMU's description puts the SSE registers in the core feature
    // with no group, so gdb lists them under `info registers` too; dbg's follows gdb's own
    // features (vector group, `info registers xmm0` or `info all-registers`).
    const general = (text: string): string => text.replace(/^(xmm\d+|mxcsr) .*\n/gm, '');
    expect(dbg).toBe(general(qemu));
  });

  it('x87 and SSE registers: the values QEMU shows, st0-st7 in ST(i) order', async () => {
    const regs = ['xmm0', 'xmm1', 'xmm7', 'mxcsr', 'fctrl', 'fstat', 'foseg', 'fooff'];
    const cmds = ['break stop_here', 'continue', `info registers ${regs.join(' ')} fiseg fioff`, 'p $st0', 'p $st1', 'p $ftag'];
    const t = EmulatorTarget.open(guest, { ramBytes: 64 << 20 });
    const srv = await serveGdb(t, new Session(t, builtinModules), { port: 0, log: () => {} });
    let dbg: string;
    try {
      dbg = fromBreakpoint((await gdbBatch(srv.port, cmds, { file: guest })).stdout);
    } finally {
      await srv.close();
      t.close();
    }
    const q = await qemuGdbstub('i386', guest);
    let qemuFp: string;
    try {
      qemuFp = fromBreakpoint((await gdbBatch(q.port, cmds, { file: guest })).stdout);
    } finally {
      q.stop();
    }
    const lines = (t: string): string[] => t.split('\n').filter((l) => regs.some((r) => l.startsWith(r + ' ')));
    expect(lines(dbg)).toHaveLength(regs.length);
    expect(lines(dbg)).toEqual(lines(qemuFp));
    expect(dbg).toContain('mxcsr          0x9f80              [ IM DM ZM OM UM PM FZ ]');
    // The last x87 instruction (fldpi in level3) at CS 0x8; QEMU's stub sends 0 for both.
    expect(dbg).toMatch(/^fiseg +0x8 /m);
    expect(dbg).toMatch(/^fioff +0x1000[0-9a-f]{2} /m);
    expect(dbg).toMatch(/xmm1 .*v4_int32 = \{0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00\}/);
    // fld1; fldpi: ST(0) is pi, ST(1) is 1 (TOP = 6), with physical registers 6 and 7 valid, as
    // gdb shows a native process. QEMU 7.2's stub sends physical registers 0 and 1 as st0 and st1
    // and 0 as ftag, so there it prints 0, 0, 0.
    expect(dbg).toMatch(/^\$1 = 3\.141592653589793238\d*$/m);
    expect(dbg).toMatch(/^\$2 = 1$/m);
    expect(dbg).toMatch(/^\$3 = 4095$/m);
    expect(qemuFp).toMatch(/^\$1 = 0$/m);
  });

  it('::regs, ::dis, ::stack and *addr are 32-bit, and agree with QEMU', async () => {
    const s = session(target);
    const status = await s.run('::status');
    expect(status).toContain('debugging emulated guest "guest.elf" (i386, emulator)');
    expect(status.find((l) => l.startsWith('emulated '))).toMatch(/^emulated i386 machine: 64 MiB RAM, 1 vCPU/);
    // Addresses print at the 4-byte pointer width: pcs, stack pointers, mappings, stop lines.
    expect(status).toContainEqual(expect.stringMatching(/^thread: 1 of 1 \(vCPU 0\), pc 0x[0-9a-f]{8} stop_here$/));
    const frames = (await s.run('::stack -v')).filter((l) => !l.startsWith(' '));
    expect(frames.length).toBe(6);
    expect(frames.filter((l) => !/^0x[0-9a-f]{8} 0x[0-9a-f]{8} \w+/.test(l))).toEqual([]);
    const maps = await s.run('::mappings');
    expect(maps[0]).toMatch(/^ {6}BASE {6}LIMIT /);
    expect(maps.slice(1).filter((l) => !/^0x[0-9a-f]{8} 0x[0-9a-f]{8} /.test(l))).toEqual([]);
    const regs = await s.run('::regs');
    expect(regs.slice(0, 9).map((l) => l.split(' ')[0])).toEqual(['%eax', '%ecx', '%edx', '%ebx', '%esp', '%ebp', '%esi', '%edi', '%eip']);
    expect(regs[8]).toMatch(/^%eip {8}= 0x[0-9a-f]{8} stop_here$/);
    expect(regs.join('\n')).not.toMatch(/%r[a-z0-9]+ /);
    // Each register ::regs shows has the value gdb printed through QEMU's stub.
    let compared = 0;
    for (const line of regs) {
      const [, name, value] = /^%(\w+)\s+= (0x[0-9a-f]+)/.exec(line)!;
      const q = new RegExp(`^${name} +(0x[0-9a-f]+)`, 'm').exec(qemu);
      if (!q) continue;
      expect(`${name}=${BigInt(value!)}`).toBe(`${name}=${BigInt(q[1]!)}`);
      compared++;
    }
    expect(compared).toBe(23); // eax..gs, fs_base, gs_base, cr0, cr2, cr3, cr4, efer
    expect((await s.run('<eip::dis')).slice(0, 3).map((l) => l.replace(/^\S+\s+/, ''))).toEqual(['pushl  %ebp', 'movl   %esp,%ebp', 'movl   0x108000,%eax']);
    // ::stack's return addresses are gdb's bt through QEMU.
    const bt = [...qemu.matchAll(/^#\d+ +(?:(0x[0-9a-f]+) in )?(\w+)/gm)].map((m) => `${m[2]}${m[1] ? ' ' + BigInt(m[1]) : ''}`);
    const stack = (await s.run('::stack')).map((l, i) => {
      const [, addr, name] = /^(0x[0-9a-f]+) (\w+)/.exec(l)!;
      return `${name}${i > 0 ? ' ' + BigInt(addr!) : ''}`;
    });
    expect(stack).toEqual(bt);
    expect(stack.length).toBe(6);
    // 4-byte pointers: *words is the first word only, /p prints 4 bytes.
    expect((await s.run('*words=K')).map((l) => l.trim())).toEqual(['11223344']);
    expect((await s.run('words/p')).map((l) => l.trimEnd())).toEqual(['words:', 'words:          0x11223344']);
  });
});

describe('the same guest after it switched to long mode', () => {
  it('is x86-64 from its first 64-bit instruction, as qemu-system-x86_64 reports it', async () => {
    const target = EmulatorTarget.open(guest, { ramBytes: 64 << 20 });
    const server = await serveGdb(target, new Session(target, builtinModules), { port: 0, log: () => {} });
    try {
      const s = session(target);
      // Paging and EFER.LMA are on, but CS is still the 32-bit segment: i386.
      await s.run('before_far_jump::bp; :c');
      expect(target.registers(1).get('efer')).toBe(0x500n);
      expect(target.arch.name).toBe('i386');
      expect((await s.run('<eip::dis'))[0]).toMatch(/ljmpl\s+\$0x18:\$0x10/);
      await s.run('long_mode_here::bp; :c');
      expect(target.arch.name).toBe('x86-64');
      const status = await s.run('::status');
      expect(status).toContain('debugging emulated guest "guest.elf" (x86-64, emulator)');
      expect(status.find((l) => l.startsWith('emulated '))).toMatch(/^emulated x86-64 machine: /);
      expect(status).toContainEqual(expect.stringMatching(/^thread: 1 of 1 \(vCPU 0\), pc 0x[0-9a-f]{16} long_mode_here$/));
      const regs = await s.run('::regs');
      expect(regs[0]).toMatch(/^%rax += 0x1122334455667788$/);
      expect(regs.join('\n')).not.toMatch(/%e(ax|ip) /);
      expect((await s.run('<rip::dis')).slice(0, 2).map((l) => l.replace(/^\S+\s+/, ''))).toEqual(['pushq  %rbp', 'movq   %rsp,%rbp']);
      // A client connecting now is told i386:x86-64 and sees the 64-bit registers QEMU shows.
      const cmds = ['info registers rax rip cs eflags cr0 cr3 cr4 efer', 'x/2i $pc'];
      const dbg = await gdbBatch(server.port, cmds);
      const addr = `0x${target.symbols.lookup('long_mode_here').toString(16)}`;
      const q = await qemuGdbstub('x86_64', guest);
      let qemu;
      try {
        qemu = await gdbBatch(q.port, [`break *${addr}`, 'continue', ...cmds]);
      } finally {
        q.stop();
      }
      // dbg's server also offers the kernel file to gdb (qXfer:exec-file), so its answers name symbols.
      const tail = (out: string): string =>
        out
          .slice(out.indexOf('\nrax ') + 1)
          .replace(/\[Inferior 1 \(process \d+\) detached\]\n?/, '')
          .replace(/ <long_mode_here(\+\d+)?>/g, '');
      expect(tail(dbg.stdout)).toContain('rax            0x1122334455667788  1234605616436508552');
      expect(tail(dbg.stdout)).toContain('efer           0x500               [ LMA LME ]');
      expect(tail(dbg.stdout)).toBe(tail(qemu.stdout));
    } finally {
      await server.close();
      target.close();
    }
  });
});
