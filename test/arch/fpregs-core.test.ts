// x87, SSE and AVX registers of a process core (NT_FPREGSET, NT_X86_XSTATE): what gdb reads from
// the core itself, through dbg's GDB server, in lldb, and in ::fpregs.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch as gdbOnCore, type Debuggee } from '../helpers/debuggee.js';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { session } from '../targets/emulator-session.js';

let d: Debuggee;
let target: ProcessCoreTarget;
let server: GdbServerHandle;

beforeAll(async () => {
  d = await debuggee('fpregs', { cflags: ['-O0', '-g', '-mavx'] });
  target = ProcessCoreTarget.open(d.core, { exe: d.exe });
  server = await serveGdb(target, undefined, { port: 0, log: () => undefined });
});

afterAll(async () => {
  await server?.close();
  target?.close();
});

const fpNames = ['st0', 'st1', 'st2', 'st3', 'fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop', 'mxcsr', 'xmm8', 'xmm15'];
const cmds = ['info registers', 'info registers fs_base gs_base', `info registers ${fpNames.join(' ')}`, 'p $ymm8', 'p/x $ymm15.v8_int32', 'p $st0'];

/** Register lines and printed values: what must agree. */
function comparable(text: string): string[] {
  return text.split('\n').filter((l) => /^(\$\d+ = |[a-z][a-z0-9_]*\s+(0x|\{|-?\d|<))/.test(l));
}

describe('FP registers of a process core', () => {
  it('gdb through dbg prints what gdb reading the core prints: info registers, x87, SSE, AVX', async () => {
    // This machine's AVX-512 mask registers (k0-k7) are in gdb's general group when it reads the
    // core; dbg describes x87, SSE and AVX, not AVX-512.
    const direct = comparable(gdbOnCore(d.exe, d.core, cmds)).filter((l) => !/^k[0-7] /.test(l));
    const via = await gdbBatch(server.port, cmds, { file: d.exe });
    const got = comparable(via.stdout);
    // gdb reading the core prints frame 0 first; from rax on, every line is the same.
    expect(got).toEqual(direct.slice(direct.findIndex((l) => l.startsWith('rax'))));
    // Present with a value (gdb agrees on the value above); where the thread's TLS sits varies.
    expect(got.join('\n')).toMatch(/^fs_base +0x[0-9a-f]+ /m);
    expect(got).toContain('mxcsr          0x9fc0              [ DAZ IM DM ZM OM UM PM FZ ]');
    expect(got).toContain('$2 = {0xe3e2e1e0, 0xe7e6e5e4, 0xebeae9e8, 0xefeeedec, 0xf3f2f1f0, 0xf7f6f5f4, 0xfbfaf9f8, 0xfffefdfc}');
    expect(got).toContain('$3 = 1.44269504088896340739');
  });

  it('::fpregs shows them; ::regs keeps to the general registers', async () => {
    const s = session(target);
    const fp = await s.run('::fpregs');
    const line = (name: string): string => fp.find((l) => l.startsWith(`%${name} `))!.replace(/ +=/, ' =');
    expect(line('st0')).toBe('%st0 = 0x3fffb8aa3b295c17f0bc 1.4426950408889634');
    expect(line('st1')).toBe('%st1 = 0x4000c90fdaa22168c235 3.141592653589793');
    expect(line('xmm8')).toBe('%xmm8 = 0x0f0e0d0c0b0a09080706050403020100');
    expect(line('ymm8h')).toBe('%ymm8h = 0x1f1e1d1c1b1a19181716151413121110');
    expect(line('mxcsr')).toBe('%mxcsr = 0x00009fc0 [ DAZ IM DM ZM OM UM PM FZ ]');
    expect(fp.find((l) => l.startsWith('%fstat'))).toMatch(/\(TOP 5\)$/);
    expect((await s.run('::regs')).join('\n')).not.toMatch(/%(st|xmm|ymm)\d/);
  });

  it('lldb through dbg reads the same x87, SSE and AVX values', async () => {
    const out = await new Promise<string>((resolve) =>
      execFile(
        'lldb',
        ['-b', '-o', `target create ${d.exe}`, '-o', `gdb-remote 127.0.0.1:${server.port}`, '-o', 'register read st1 xmm8 ymm8 mxcsr fctrl'],
        { timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } },
        (_e, stdout, stderr) => resolve(stdout + stderr),
      ),
    );
    expect(out).toMatch(/xmm8 = \{0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07 0x08 0x09 0x0a 0x0b 0x0c 0x0d 0x0e 0x0f\}/);
    expect(out).toMatch(/ymm8 = \{0x00 0x01 .* 0x1e 0x1f\}/);
    expect(out).toMatch(/mxcsr = 0x00009fc0/);
    expect(out).toMatch(/fctrl = 0x0000037f/);
    expect(out).toMatch(/st1 = \{0x35 0xc2 0x68 0x21 0xa2 0xda 0x0f 0xc9 0x00 0x40\}/);
    expect(out).not.toMatch(/0xcc 0xcc/);
  });
});

describe('FP registers where the source has none, and written on a live guest', () => {
  it('::fpregs on a kernel dump says the dump holds no FPU state', async () => {
    const { KernelDumpTarget } = await import('../../src/targets/elfcore/kernel-dump-target.js');
    const { qemuSample } = await import('../helpers/repo.js');
    const t = KernelDumpTarget.open(qemuSample('vmcore.elf'));
    try {
      await expect(session(t).run('::fpregs')).rejects.toThrow(/x87\/SSE registers \(kernel dumps hold only NT_PRSTATUS and QEMU's CPU state, no FPU state\)/);
    } finally {
      t.close();
    }
  });

  it('a live guest: xmm, st and mxcsr written are read back by ::fpregs and by the next instruction', async () => {
    const { EmulatorTarget } = await import('../../src/targets/emulator/emulator-target.js');
    const { i386Guest } = await import('../helpers/i386-guest.js');
    const t = EmulatorTarget.open(i386Guest(), { ramBytes: 64 << 20 });
    try {
      const w = t.caps.writeRegisters!;
      w.writeRegister(1, 'xmm3', 0x00112233445566778899aabbccddeeffn);
      w.writeRegister(1, 'st0', 0x4000c90fdaa22168c235n);
      w.writeRegister(1, 'mxcsr', 0x1f80n);
      const r = t.registers(1);
      expect(r.get('xmm3')).toBe(0x00112233445566778899aabbccddeeffn);
      expect(r.get('st0')).toBe(0x4000c90fdaa22168c235n);
      expect(r.get('mxcsr')).toBe(0x1f80n);
      await t.caps.execution!.step(1);
      expect(t.registers(1).get('xmm3')).toBe(0x00112233445566778899aabbccddeeffn);
      expect(() => w.writeRegister(1, 'xmm99', 0n)).toThrow(/unknown register "xmm99"/);
    } finally {
      t.close();
    }
  });
});
