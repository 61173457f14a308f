/**
 * The fast engine (native/emu/emu.c, "Fast engine") against the exact engine alone
 * (DBG_EMU_EXACT=1): the same guest must stop at the same instruction numbers with the same
 * registers and memory, whatever stops it (slice limits on two vCPUs with timer interrupts,
 * breakpoints, read/write/access watchpoints, faults).
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import type { StopStatus } from '../../src/targets/target.js';
import type { MachineStop } from '../../src/targets/emulator/machine.js';
import { asmGuest64 } from './asm-guest.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'dbg-emuf-'));
let kernel: string;
const open: EmulatorTarget[] = [];
afterAll(() => open.forEach((t) => t.close()));

beforeAll(() => {
  kernel = join(dir, 'kernel.elf');
  try {
    execFileSync('sh', [join(root, 'dumps', 'kernel', 'build.sh'), kernel]);
  } catch {
    kernel = join(root, 'dumps', 'kernel.prebuilt.elf');
  }
});

/** A machine whose vCPUs have a fast engine (exact = false) or only the exact one. */
function boot(path: string, exact: boolean, opts: object = {}): EmulatorTarget {
  const before = process.env.DBG_EMU_EXACT;
  process.env.DBG_EMU_EXACT = exact ? '1' : '0';
  try {
    const t = EmulatorTarget.open(path, opts);
    open.push(t);
    return t;
  } finally {
    if (before === undefined) delete process.env.DBG_EMU_EXACT;
    else process.env.DBG_EMU_EXACT = before;
  }
}

const buildGuest = (name: string, source: string): string => asmGuest64(dir, name, source);

/** Everything a stop leaves: seq, the stop, every vCPU's registers, a hash of RAM. */
function snapshot(t: EmulatorTarget, st?: StopStatus | MachineStop): string {
  const m = t.machine;
  const regs = m.vcpus.map((v) => [...t.registers(v.index + 1)].map(([k, x]) => `${k}=${x.toString(16)}`).join(' '));
  const reason = st ? JSON.stringify(st.reason, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)) : '';
  return [`seq ${m.seq}`, reason, ...regs, createHash('sha256').update(m.ram).digest('hex')].join('\n');
}

describe('the fast engine runs the guest exactly as the exact engine does', () => {
  it('uses a fast engine on this Unicorn build', () => {
    const t = boot(kernel, false, { ramBytes: 64 << 20, cpus: 2 });
    expect(t.machine.vcpus.every((v) => v.fast !== undefined)).toBe(true);
  });

  it('::status says which engine runs the guest, and why not the fast one', () => {
    const status = (args: string[], env: Record<string, string> = {}) => {
      const r = spawnSync(join(root, 'bin', 'dbg'), ['live', '--emulate', kernel, '--wait', '-q', ...args, '-e', '::status'], { encoding: 'utf8', timeout: 60_000, cwd: dir, env: { ...process.env, ...env } });
      expect(r.status, r.stderr).toBe(0);
      return /^engine: .*$/m.exec(r.stdout)?.[0];
    };
    expect(status(['--no-record'], { DBG_EMU_EXACT: '0' })).toMatch(/^engine: Unicorn \d+\.\d+\.\d+; fast engine \(per-block counting\), the exact engine at breakpoints, watchpoints, port I\/O and faults$/);
    expect(status(['--no-record'], { DBG_EMU_EXACT: '1' })).toMatch(/; exact engine only \(per-instruction counting\): no fast engine: DBG_EMU_EXACT=1 asks for the exact engine alone$/);
    expect(status(['--record', join(dir, 'status.trace')], { DBG_EMU_EXACT: '0' })).toMatch(/; fast engine \(per-block counting\), recorded by slices \(no pc kept: replay re-executes\); the exact engine at breakpoints, watchpoints, port I\/O and faults$/);
    expect(status(['--record', join(dir, 'status-rows.trace')], { DBG_EMU_EXACT: '0', DBG_RECORD_ROWS: 'eager' })).toMatch(/; fast engine \(per-block counting\), recorded block by block; the exact engine at breakpoints, watchpoints, port I\/O and faults$/);
    expect(status(['--record', join(dir, 'status-exact.trace')], { DBG_EMU_EXACT: '0', DBG_RECORD_FAST: '0', DBG_RECORD_ROWS: 'eager' })).toMatch(/; exact engine \(per-instruction counting\) while recording: the recorder takes every instruction's pc$/);
  });

  it('in a fresh process, every engine made finds its own CPU and hands over to the exact engine', () => {
    // The first engine of a process once took another object of Unicorn's for its CPUState
    // (which object a scan met first depended on the heap's layout): the later engines were
    // refused, and the first one's hand-over called QEMU with a pointer that is not a CPU.
    const script = `
      import { EmulatorTarget } from ${JSON.stringify(join(root, 'dist', 'src', 'targets', 'emulator', 'emulator-target.js'))};
      let fast = 0, engines = 0, hits = 0;
      for (let i = 0; i < 3; i++) {
        const t = EmulatorTarget.open(${JSON.stringify(kernel)}, { ramBytes: 64 << 20, cpus: 2 });
        engines += t.machine.vcpus.length;
        fast += t.machine.vcpus.filter((v) => v.fast !== undefined).length;
        t.addWatchpoint(t.symbols.lookup('tasks'), 8, 'write');
        for (let j = 0; j < 2; j++) if ((await t.caps.execution.resume()).reason.kind === 'watchpoint') hits++;
      }
      console.log(\`fast \${fast} of \${engines}, \${hits} watchpoint stops\`);`;
    // Later, the first fast engine met the exact engine's registers in a stale copy (its freed scan
    // buffer) about once in 50 processes: hence several processes.
    for (let run = 0; run < 8; run++) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DBG_EMU_EXACT: '0' } });
      expect(r.status, `${r.signal ?? ''} ${r.stderr}`).toBe(0);
      expect(r.stdout.trim(), `process ${run}`).toBe('fast 6 of 6, 6 watchpoint stops');
    }
  }, 120_000);

  it('the sample kernel on two vCPUs: same state after every odd-sized run, to its panic', () => {
    const fast = boot(kernel, false, { ramBytes: 64 << 20, cpus: 2 });
    const exact = boot(kernel, true, { ramBytes: 64 << 20, cpus: 2 });
    for (let i = 0; i < 40; i++) {
      const n = BigInt(12_345 + i * 98_765);
      const a = fast.machine.runSync(n);
      const b = exact.machine.runSync(n);
      expect(snapshot(fast, a)).toBe(snapshot(exact, b));
      if (a) break;
    }
    expect(fast.caps.console!.consoleText()).toContain('PANIC: scheduler: task list corrupted');
    expect(fast.caps.console!.consoleText()).toBe(exact.caps.console!.consoleText());
  });

  it('breakpoints and read, write and access watchpoints stop at the same instructions', async () => {
    const stops = async (exact: boolean): Promise<string[]> => {
      const t = boot(kernel, exact, { ramBytes: 64 << 20, cpus: 2 });
      const sym = (s: string): bigint => t.symbols.lookup(s);
      t.addBreakpoint(sym('timer_tick'));
      t.addWatchpoint(sym('jiffies'), 8, 'read');
      t.addWatchpoint(sym('tasks'), 8, 'write'); // the magic the bug overwrites
      t.addWatchpoint(sym('runqueue'), 8, 'access');
      const out: string[] = [];
      for (let i = 0; i < 60; i++) {
        const st = await t.caps.execution!.resume();
        out.push(snapshot(t, st));
        if (st.reason.kind !== 'breakpoint' && st.reason.kind !== 'watchpoint') break;
      }
      return out;
    };
    const a = await stops(false);
    const b = await stops(true);
    expect(a.length).toBeGreaterThan(20);
    expect(a.some((s) => s.includes('"access":"read"'))).toBe(true);
    expect(a.some((s) => s.includes('"access":"write"'))).toBe(true);
    expect(a).toEqual(b);
  });

  it('faults inside a block, fetch faults and port I/O are reported as the exact engine reports them', async () => {
    // a long straight block with a data fault in its middle, then (after dbg resumes past it
    // with a register write) a jump to nowhere; console output on the way
    const k = buildGuest('f', `.globl _start
_start:
  mov $0x3f8, %dx
  mov $'A', %al
  outb %al, %dx
  xor %ecx, %ecx
  inc %ecx
  inc %ecx
  movq (0x7000000000), %rax
  inc %ecx
  mov $0x7100000000, %rax
  jmp *%rax
`);
    const run = async (exact: boolean): Promise<string[]> => {
      const t = boot(k, exact, { ramBytes: 8 << 20 });
      const out: string[] = [];
      let st = await t.caps.execution!.resume();
      out.push(snapshot(t, st));
      // skip the faulting load (8 bytes: REX.W A1 moffs64... gas emits movabs, 10 bytes)
      t.caps.writeRegisters!.writeRegister(1, 'rip', st.pc! + 10n);
      st = await t.caps.execution!.resume();
      out.push(snapshot(t, st));
      out.push(t.caps.console!.consoleText());
      return out;
    };
    const a = await run(false);
    expect(a[0]).toMatch(/read of 0x7000000000/);
    expect(a[1]).toMatch(/0x7100000000/);
    expect(a).toEqual(await run(true));
  });

  it('REP STOS iterations done by the block hook (emu.c, rep_ahead) leave what the exact engine leaves, at every slice limit, watchpoint and fault', async () => {
    // fills across pages: bytes from an odd address, dwords backwards, qwords, words with 32-bit
    // addresses; a fill over its own code (that page has translated code: QEMU's store path);
    // none (ECX = 0); last, dwords backwards from 8 with 32-bit addresses: EDI wraps to
    // 0xfffffffc, which is not mapped (#PF, and no IDT: the run stops there)
    const k = buildGuest('rep', `.globl _start
_start:
  cld
  mov $0x200003, %rdi
  mov $0x3005, %rcx
  mov $0x5a, %al
  rep stosb
  std
  mov $0x20a000, %rdi
  mov $0x1801, %rcx
  mov $0x11223344, %eax
  rep stosl
  cld
  mov $0x210000, %rdi
  mov $0x1000, %rcx
  mov $0x0102030405060708, %rax
  rep stosq
  mov $0x220ffe, %edi
  mov $0x900, %ecx
  mov $0xbeef, %ax
  addr32 rep stosw
  lea after(%rip), %rdi
  mov $16, %rcx
  mov $0x90, %al
  rep stosb
after:
  .fill 16, 1, 0xcc
  xor %ecx, %ecx
  rep stosb
  mov $0x3f8, %dx
  mov $'D', %al
  outb %al, %dx
  std
  mov $8, %edi
  mov $5, %ecx
  mov $0x55667788, %eax
  addr32 rep stosl
  hlt
`);
    const slices = (exact: boolean): string[] => {
      const t = boot(k, exact, { ramBytes: 8 << 20 });
      const out: string[] = [];
      for (let i = 0; i < 200; i++) {
        const st = t.machine.runSync(BigInt(331 + i * 7));
        out.push(snapshot(t, st));
        if (st) break;
      }
      out.push(t.caps.console!.consoleText());
      return out;
    };
    const a = slices(false);
    expect(a.at(-2)).toMatch(/triple fault: #PF page fault: write to 0xfffffffc not mapped/);
    expect(a.at(-1)).toBe('D');
    expect(a).toEqual(slices(true));

    // write watchpoints inside the fills: the stop is at the same iteration, with the same registers
    const watched = async (exact: boolean): Promise<string[]> => {
      const t = boot(k, exact, { ramBytes: 8 << 20 });
      t.addWatchpoint(0x201801n, 2, 'write');
      t.addWatchpoint(0x205ffcn, 4, 'write');
      t.addWatchpoint(0x210ff8n, 8, 'write');
      const out: string[] = [];
      for (let i = 0; i < 10; i++) {
        const st = await t.caps.execution!.resume();
        out.push(snapshot(t, st));
        if (st.reason.kind !== 'watchpoint') break;
      }
      return out;
    };
    const w = await watched(false);
    expect(w.filter((x) => x.includes('"kind":"watchpoint"')).length).toBe(4);
    expect(w).toEqual(await watched(true));
  });
});

it('the prebuilt sample kernel is there for the fallback above', () => {
  expect(existsSync(join(root, 'dumps', 'kernel.prebuilt.elf'))).toBe(true);
});
