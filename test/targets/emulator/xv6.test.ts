/**
 * Acceptance with xv6 (mit-pdos/xv6-public), opt-in: xv6 is not in this repository. Build it
 * yourself (`make kernel fs.img` with gcc -m32; gcc 12 needs -Werror off) and point DBG_XV6_DIR at
 * the directory holding `kernel` and `fs.img`. The same boot under QEMU 7.2 is the oracle:
 *   qemu-system-i386 -kernel kernel -drive file=fs.img,index=1,media=disk,format=raw -m 512 -serial stdio
 * (with 2 CPUs: -smp 2,sockets=2; see qemu()).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../../src/store/emulator-recorder.js';
import { TraceReader } from '../../../src/store/trace-reader.js';
import { verifyTrace } from '../../../src/targets/replay/rerecord.js';
import { EmulatorTarget } from '../../../src/targets/emulator/emulator-target.js';
import { session } from '../emulator-session.js';
import { serveGdb } from '../../../src/gdbserver/gdb-server.js';
import { builtinModules } from '../../../src/mdb/modules/index.js';
import { Session } from '../../../src/mdb/session.js';
import { gdbBatch } from '../../gdbserver/gdb-batch.js';
import { StandardPc } from '../../../src/targets/emulator/devices/pc.js';

// Every recorded machine here checks that the device states its marks share are the devices' own (pc.ts, save()).
StandardPc.checkSaves = true;
afterEach(() => {
  const mismatch = StandardPc.saveMismatch;
  StandardPc.saveMismatch = undefined;
  expect(mismatch).toBeUndefined();
});

const dir = process.env.DBG_XV6_DIR;
const have = dir !== undefined && existsSync(join(dir, 'kernel')) && existsSync(join(dir, 'fs.img'));
const open: EmulatorTarget[] = [];
const traces = mkdtempSync(join(tmpdir(), 'dbg-xv6-'));
afterAll(() => {
  open.forEach((t) => t.close());
  rmSync(traces, { recursive: true, force: true });
});

function boot(cpus: number): EmulatorTarget {
  const t = EmulatorTarget.open(join(dir!, 'kernel'), { ramBytes: 512 << 20, cpus, disks: [undefined, { path: join(dir!, 'fs.img') }] });
  open.push(t);
  return t;
}

/**
 * Run until the console from offset `from` on holds `text` (or `budget` instructions pass),
 * yielding between slices of work so that the test worker stays responsive.
 */
async function runUntil(t: EmulatorTarget, text: string, budget = 2_000_000_000n, from = 0): Promise<string> {
  const m = t.machine;
  const end = m.seq + budget;
  while (!m.console().slice(from).includes(text) && m.seq < end) {
    const stop = m.runSync(1_000_000n);
    if (stop) break;
    await new Promise<void>((r) => setImmediate(r));
  }
  return m.console();
}

/**
 * QEMU's serial output of the same boot (`cpus` vCPUs), with `input` typed once the shell prompt
 * shows. One CPU per socket: SeaBIOS's MP table has one entry per package, so QEMU 7.2's default
 * topology for `-smp 2` (two cores in one socket) gives xv6 one CPU.
 */
function qemu(input: string, cpus = 1): Promise<string> {
  return new Promise((resolve) => {
    const q = spawn('qemu-system-i386', ['-kernel', join(dir!, 'kernel'), '-drive', `file=${join(dir!, 'fs.img')},index=1,media=disk,format=raw,snapshot=on`, '-m', '512', '-smp', `${cpus},sockets=${cpus}`, '-serial', 'stdio', '-display', 'none']);
    let out = '';
    let typed = false;
    q.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      if (!typed && out.includes('$ ')) {
        typed = true;
        q.stdin.write(input);
      } else if (typed && out.endsWith('$ ')) q.kill();
    });
    setTimeout(() => q.kill(), 60_000);
    q.on('exit', () => resolve(out));
  });
}

/** Boot to the shell prompt, type `ls`: the console from the typed line to the next prompt. */
async function lsAtPrompt(cpus: number): Promise<{ t: EmulatorTarget; out: string }> {
  const t = boot(cpus);
  expect(await runUntil(t, '$ ', 600_000_000n)).toContain('init: starting sh\n$ ');
  t.machine.consoleInput(Buffer.from('ls\n'));
  const before = t.machine.console().length;
  return { t, out: (await runUntil(t, '\n$ ', 1_000_000_000n, before)).slice(before) };
}

describe.skipIf(!have)('xv6 (DBG_XV6_DIR)', () => {
  it('the kernel boots with 1 CPU: the superblock comes from the IDE disk', async () => {
    const out = await runUntil(boot(1), 'sb: size');
    expect(out).toContain('cpu0: starting 0\n');
    expect(out).toContain('sb: size 1000 nblocks 941 ninodes 200 nlog 30 logstart 2 inodestart 32 bmap start 58\n');
  });

  it('past the first exec, the fast engine and the exact engine alone hold the same state at the same seq', { timeout: 240_000 }, () => {
    // The fast engine caches blocks by virtual pc: /init's code comes to the pcs initcode ran at.
    const at = (exact: boolean): string => {
      const before = process.env.DBG_EMU_EXACT;
      if (exact) process.env.DBG_EMU_EXACT = '1';
      else delete process.env.DBG_EMU_EXACT;
      const t = boot(1);
      if (before === undefined) delete process.env.DBG_EMU_EXACT;
      else process.env.DBG_EMU_EXACT = before;
      while (t.machine.seq < 90_000_000n) if (t.machine.runSync(90_000_000n - t.machine.seq > 1_000_000n ? 1_000_000n : 90_000_000n - t.machine.seq)) break;
      const r = t.registers(1);
      return `${t.machine.seq} ${['eip', 'esp', 'eax', 'ebx', 'ecx', 'edx', 'esi', 'edi', 'cr3'].map((n) => `${n}=${r.get(n)!.toString(16)}`).join(' ')}`;
    };
    const fast = at(false);
    expect(fast).toMatch(/^90000000 /);
    expect(fast).toBe(at(true));
  });

  it('with 2 CPUs, INIT/SIPI starts the second one (real mode at 0x7000) and both enter the scheduler', async () => {
    const out = await runUntil(boot(2), 'cpu0: starting 0');
    expect(out).toContain('cpu1: starting 1\ncpu0: starting 0\n');
  });

  // User processes run at virtual addresses below the end of RAM: their TLB entries lead to the
  // physical pages their page tables name (native/emu/phys.c), not to the RAM at the same address.
  it('reaches the shell prompt, and `ls` typed on COM1 lists the file system as under QEMU', { timeout: 240_000 }, async () => {
    const { out } = await lsAtPrompt(1);
    const q = await qemu('ls\n');
    expect(out).toBe(q.slice(q.indexOf('$ ') + 2));
  });

  it('with 2 CPUs, reaches the shell prompt and `ls` lists the file system as under QEMU -smp 2 (two sockets)', { timeout: 240_000 }, async () => {
    const { t, out } = await lsAtPrompt(2);
    const q = await qemu('ls\n', 2);
    expect(out).toContain('README         2 2 2286\n');
    // the whole console, from the boot on: both CPUs start (cpu1 first), then the listing
    expect(q).toContain('cpu1: starting 1\ncpu0: starting 0\n');
    expect(t.machine.console()).toBe(q);
  });

  it('a breakpoint on sys_exec stops there (i386 registers, a stack through the trap frame); steps go one instruction', { timeout: 240_000 }, async () => {
    const t = boot(1);
    const s = session(t);
    await s.run('sys_exec::bp');
    expect((await s.run(':c'))[0]).toMatch(/^stopped: breakpoint 1 at 0x80[0-9a-f]{6} sys_exec on vCPU 0$/);
    expect((await s.run('::regs')).find((l) => l.startsWith('%eip'))).toMatch(/sys_exec$/);
    // 4-byte pcs and stack pointers, 32-bit mnemonics
    const stack = (await s.run('::stack -v')).filter((l) => !l.startsWith(' ')).join('\n');
    expect(stack).toMatch(/^0x8[0-9a-f]{7} 0x80[0-9a-f]{6} sys_exec\(.*\n0x8[0-9a-f]{7} 0x80[0-9a-f]{6} trap\+0x[0-9a-f]+\(.*\n0x8[0-9a-f]{7} 0x80[0-9a-f]{6} alltraps\+0x[0-9a-f]+ /);
    expect((await s.run('<eip::dis')).slice(0, 3).map((l) => l.replace(/^\S+\s+/, ''))).toEqual(['pushl  %ebp', 'movl   %esp,%ebp', 'pushl  %edi']);
    expect((await s.run(':s'))[0]).toMatch(/^stopped: step at 0x80[0-9a-f]{6} sys_exec\+0x1 on vCPU 0$/);
    expect(t.machine.console()).toContain('cpu0: starting 0');
  });

  it('a write watchpoint on the kernel variable ticks stops at each timer tick, in trap()', { timeout: 240_000 }, async () => {
    const t = boot(1);
    const s = session(t);
    await s.run('ticks::wp -w');
    for (const n of [1, 2]) {
      expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 1 \(write of 0x80[0-9a-f]{6}\) at 0x80[0-9a-f]{6} trap\+0x[0-9a-f]+ on vCPU 0$/);
      expect(t.readVirtual(t.symbols.lookup('ticks'), 4).readUInt32LE(0)).toBe(n);
    }
  });

  it('recorded to the shell prompt, its boot re-executes to the recording (dbg traces --verify)', { timeout: 600_000 }, async () => {
    const path = join(traces, 'boot.trace');
    const t = boot(1);
    try {
      t.record(new EmulatorRecorder(path, { guest: 'kernel', symbols: join(dir!, 'kernel') }));
      while (!t.machine.console().includes('$ ')) expect(t.machine.runSync(1_000_000n)).toBeUndefined();
    } finally {
      t.close();
    }
    const r = TraceReader.open(path);
    try {
      // the local APIC's ID is told once, not read at every lock (49,000 reads)
      expect(r.inputs(r.first, r.end + 1).filter((i) => i.kind === 'lapic-id').map((i) => i.detail.value)).toEqual([0]);
      expect((await verifyTrace(r)).difference).toBeUndefined();
    } finally {
      r.close();
    }
  });

  // Recorded block by block on the fast engine (the exact engine at hand-overs).
  it('recorded: ::whowrote names the tick that wrote ticks, ::rcont goes back to it with the old value, ::rstep before it; gdb reverse-continue to the watchpoint and stepi over the write', { timeout: 900_000 }, async () => {
    const t = boot(1);
    t.record(new EmulatorRecorder(join(traces, 'ticks.trace'), { guest: 'kernel', symbols: join(dir!, 'kernel') }));
    const s = session(t);
    await s.run('ticks::wp -w');
    await s.run(':c');
    expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 1 \(write of 0x80[0-9a-f]{6}\) at 0x80[0-9a-f]{6} trap\+0x[0-9a-f]+ on vCPU 0$/);
    const now = t.caps.reverse!.bounds().now;

    // gdb with the ELF32 kernel, through the server `dbg live --gdb` runs, on the recording:
    // reverse-continue to the watchpoint stops before the write, at the writing instruction;
    // stepi makes the write again (replayed), which is where the history ends.
    const server = await serveGdb(t, new Session(t, builtinModules), { port: 0, log: () => {} });
    let r;
    try {
      r = await gdbBatch(server.port, ['watch ticks', 'reverse-continue', 'p ticks', 'x/i $pc', 'bt', 'stepi', 'p ticks'], { file: join(dir!, 'kernel'), timeoutMs: 300_000 });
    } finally {
      await server.close();
    }
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Hardware watchpoint 1: ticks\n\nOld value = 2\nNew value = 1\n/);
    expect(r.stdout).toMatch(/^\$1 = 1$/m);
    expect(r.stdout).toMatch(/^=> 0x80[0-9a-f]{6} <trap\+\d+>:\t/m);
    expect(r.stdout).toMatch(/^#1 +0x80[0-9a-f]{6} in alltraps \(\)/m);
    expect(r.stdout).toMatch(/^\$2 = 2$/m);
    expect(t.caps.reverse!.bounds().now).toBe(now);

    const who = (await s.run('ticks,4::whowrote'))[0]!;
    expect(who).toMatch(new RegExp(`^seq ${now - 1n}  trap\\+0x[0-9a-f]+ \\(0x80[0-9a-f]{6}\\), vCPU 0  phys 0x[0-9a-f]+: 01 00 00 00 -> 02 00 00 00$`));
    expect((await s.run('::rcont'))[0]).toMatch(new RegExp(`^seq ${now - 1n}: trap\\+0x[0-9a-f]+ .*write watchpoint 1 on 0x80[0-9a-f]{6}.*memory as before the write$`));
    expect(t.readVirtual(t.symbols.lookup('ticks'), 4).readUInt32LE(0)).toBe(1);
    expect((await s.run('::stack')).join('\n')).toMatch(/trap\+0x[0-9a-f]+\n.*alltraps/);
    expect((await s.run('::rstep'))[0]).toMatch(new RegExp(`^seq ${now - 2n}: `));
  });
});
