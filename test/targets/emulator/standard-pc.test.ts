/**
 * The standard-PC devices and 32-bit interrupt delivery, against QEMU: the same multiboot guest
 * (test/fixtures-src/pc, built here with gcc -m32) prints what it finds on COM1 under
 * `qemu-system-i386 -kernel` and under the dbg machine, and the two outputs must be equal.
 * Where QEMU cannot be the oracle (typed keys, a second CPU: SeaBIOS under TCG lists one CPU in
 * its MP table), the guest's answers are checked against the hardware's documented values.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../helpers/repo.js';
import { EmulatorTarget } from '../../../src/targets/emulator/emulator-target.js';
import { scanCodes } from '../../../src/targets/emulator/devices/i8042.js';
import { isDbgError } from '../../../src/common/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-pc-'));
const src = join(repoRoot, 'test', 'fixtures-src', 'pc');
const open: EmulatorTarget[] = [];
afterAll(() => open.forEach((t) => t.close()));

function build(name: string, files: string[]): string {
  const objs = files.map((f) => {
    const o = join(dir, `${name}-${f.replace(/\W/g, '_')}.o`);
    const cflags = f.endsWith('.c') ? ['-ffreestanding', '-fno-pic', '-fno-pie', '-fno-stack-protector', '-mgeneral-regs-only', '-O2', '-Wall', '-Wno-array-bounds'] : [];
    execFileSync('gcc', ['-m32', ...cflags, '-c', f.includes('/') ? f : join(src, f), '-o', o]);
    return o;
  });
  const out = join(dir, `${name}.elf`);
  execFileSync('ld', ['-m', 'elf_i386', '-nostdlib', '-z', 'noexecstack', '-Ttext=0x100000', '-e', '_start', '-o', out, ...objs]);
  return out;
}

const guest = build('guest', ['boot.S', 'guest.c']);
const disk = join(dir, 'disk.img');
{
  const b = Buffer.alloc(64 * 512);
  b.write('sector one of the disk!!', 512, 'latin1');
  writeFileSync(disk, b);
}

function qemu(kernel: string, extra: string[] = []): string {
  const r = spawnSync('qemu-system-i386', ['-kernel', kernel, '-serial', 'stdio', '-display', 'none', '-device', 'isa-debug-exit,iobase=0xf4,iosize=4', '-drive', `file=${disk},index=0,media=disk,format=raw,snapshot=on`, '-m', '64', ...extra], {
    encoding: 'latin1',
    timeout: 30_000,
  });
  return r.stdout;
}

async function dbg(kernel: string, cpus: number, keys?: string): Promise<{ t: EmulatorTarget; console: string; stop: string }> {
  const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20, cpus, disks: [{ path: disk }] });
  open.push(t);
  if (keys !== undefined) {
    // typed once the guest has its keyboard interrupt ready (after the I/O APIC part)
    while (!t.machine.console().includes('ioapic: 3 PIT')) expect(t.machine.runSync(10_000n)).toBeUndefined();
    t.machine.keyboardInput(scanCodes(keys) as number[]);
  }
  const st = await t.caps.execution!.resume();
  return { t, console: t.machine.console(), stop: JSON.stringify(st.reason, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)) };
}

describe('the standard PC, against QEMU', () => {
  it('the device guest prints the same on COM1 under dbg as under QEMU (1 CPU)', async () => {
    const q = qemu(guest);
    expect(q).toContain('#GP error code 40a from cs=1b\ndone\n');
    const d = await dbg(guest, 1);
    expect(d.stop).toBe('{"kind":"exited","code":1}');
    expect(d.console).toBe(q);
  });

  it('with 2 CPUs the MP table lists both and INIT/SIPI starts the second in real mode', async () => {
    const d = await dbg(guest, 2);
    expect(d.console).toContain('mp: cpus=2 ioapic id=0 lapic at fee00000\n');
    expect(d.console).toContain('smp: cpu 1 started\n');
    const q = qemu(guest).replace('mp: cpus=1', 'mp: cpus=2').replace('kbd:', 'smp: cpu 1 started\nkbd:');
    expect(d.console).toBe(q);
  });

  it('keys typed into the i8042 arrive as set-1 scan codes on IRQ 1; the CGA text and cursor show in ::screen', async () => {
    const d = await dbg(guest, 1, 'lS');
    // l make/break, left shift make, s make/break, left shift break
    expect(d.console).toContain('kbd: 6 scan codes 26 a6 2a 1f 9f aa\n');
    const s = d.t.machine.screen();
    expect(s.lines[1]!.trimEnd()).toBe('dbg standard pc');
    expect(s.cursor).toBe(95);
    expect(s.lines[0]).toBe(' '.repeat(80));
  });
});

/** A 32-bit multiboot guest from GNU assembly. */
function asmGuest(name: string, body: string): string {
  const f = join(dir, `${name}.S`);
  writeFileSync(f, `.text\n.align 4\n.long 0x1badb002, 0, -0x1badb002\n.globl _start\n_start:\n${body}\n`);
  return build(name, [f]);
}

describe('a kernel that programs the devices wrongly', () => {
  it('an IPI asking for NMI delivery stops the run with a message naming the APIC and the ICR value', async () => {
    const k = asmGuest('nmi', 'movl $0x1ff, 0xfee000f0\nmovl $0x400, 0xfee00300\n1: jmp 1b');
    const d = await dbg(k, 1);
    expect(d.stop).toContain('"fault":"local APIC of vCPU 0: ICR 0x400 asks for NMI delivery, which the emulated APIC does not send"');
  });

  it('a misaligned local APIC access stops the run naming the access', async () => {
    const k = asmGuest('misaligned', 'movb 0xfee00021, %al\n1: jmp 1b');
    const d = await dbg(k, 1);
    expect(d.stop).toContain('"fault":"local APIC: 1-byte read of offset 0x21 by vCPU 0; its registers take aligned 4-byte accesses only"');
  });

  it('an exception without an IDT gate in protected mode is a triple fault stop', async () => {
    const k = asmGuest('triple', 'ud2');
    const d = await dbg(k, 1);
    expect(d.stop).toContain('triple fault: invalid opcode (#UD) at 0x10000c, with no usable IDT gate (IDT base 0x0 limit 0x3ff)');
  });

  it('a disk image that cannot be opened is a one-line error', () => {
    let err: unknown;
    try {
      EmulatorTarget.open(guest, { disks: [{ path: join(dir, 'no-such.img') }] });
    } catch (e) {
      err = e;
    }
    expect(isDbgError(err)).toBe(true);
    expect((err as Error).message).toMatch(/^cannot open disk image ".*no-such\.img": /);
  });
});
