/**
 * The standard-PC devices and 32-bit interrupt delivery, against QEMU: the same multiboot guest
 * (test/fixtures-src/pc, built here with gcc -m32) prints what it finds on COM1 under
 * `qemu-system-i386 -kernel` and under the dbg machine, and the two outputs must be equal.
 * With 2 CPUs QEMU runs with one CPU per socket (SeaBIOS's MP table has one entry per package, and
 * QEMU 7.2's `-smp 2` is two cores in one socket). Where QEMU cannot be the oracle (typed keys),
 * the guest's answers are checked against the hardware's documented values.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../helpers/repo.js';
import { EmulatorTarget } from '../../../src/targets/emulator/emulator-target.js';
import { EmulatorRecorder } from '../../../src/store/emulator-recorder.js';
import { TraceReader } from '../../../src/store/trace-reader.js';
import { verifyTrace } from '../../../src/targets/replay/rerecord.js';
import { ReplayMachine } from '../../../src/targets/replay/replay-machine.js';
import { scanCodes } from '../../../src/targets/emulator/devices/i8042.js';
import { StandardPc } from '../../../src/targets/emulator/devices/pc.js';
import { isDbgError } from '../../../src/common/errors.js';

// Every recorded machine here checks that the device states its marks share are the devices' own (pc.ts, save()).
StandardPc.checkSaves = true;
afterEach(() => {
  const mismatch = StandardPc.saveMismatch;
  StandardPc.saveMismatch = undefined;
  expect(mismatch).toBeUndefined();
});

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
    // one CPU per socket: SeaBIOS's MP table has one entry per package
    expect(d.console).toBe(qemu(guest, ['-smp', '2,sockets=2']));
  });

  // Unicorn 2.0.1 sets eip to the linear address (CS base included) before a code hook, so a stop
  // there used to leave a real-mode vCPU at CS base + IP: the second CPU, stepped from its SIPI at
  // CS 0x800, IP 0, went on at IP 0x8001 through zeros and never started.
  it('the second CPU single-stepped through its real-mode start: IP stays relative to CS, the guest prints as QEMU', async () => {
    const t = EmulatorTarget.open(guest, { ramBytes: 64 << 20, cpus: 2, disks: [{ path: disk }] });
    open.push(t);
    const m = t.machine;
    // slices of 100 instructions until the start-up IPI, which takes effect at a slice's end
    while (m.registers(1, ['cs']).get('cs') !== 0x800n) expect(m.runSync(100n)).toBeUndefined();
    expect(m.registers(1, ['rip']).get('rip')).toBe(0n);
    const ips: bigint[] = [];
    // xor, mov to ds, the flag's store, sti, then hlt (the step that waits for an interrupt)
    for (let i = 0; i < 5; i++) {
      const st = await m.run({ vcpu: 1, count: 1 });
      const r = m.registers(1, ['cs', 'rip']);
      if (st.reason.kind !== 'step' || r.get('cs') !== 0x800n) break;
      ips.push(r.get('rip')!);
    }
    expect(ips.slice(0, 3)).toEqual([2n, 4n, 10n]);
    while (m.runSync(100_000n) === undefined);
    expect(m.console()).toContain('smp: cpu 1 started\n');
  });

  it('recorded, the 2-CPU guest (a real-mode store on the second CPU) runs as unrecorded and its trace replays the second CPU\'s start', async () => {
    const plain = await dbg(guest, 2);
    const t = EmulatorTarget.open(guest, { ramBytes: 64 << 20, cpus: 2, disks: [{ path: disk }] });
    open.push(t);
    t.record(new EmulatorRecorder(join(dir, 'smp.trace'), { guest: 'guest.elf', symbols: guest }));
    const st = await t.caps.execution!.resume();
    expect(JSON.stringify(st.reason, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))).toBe(plain.stop);
    expect(t.machine.console()).toBe(plain.console);
    // back to where the second CPU wrote its flag, in real mode: the write is in the history
    const w = await t.caps.history!.whoWrote(0x7ff0n, 2);
    expect(w?.vcpu).toBe(1);
    expect(w?.data.toString('hex')).toBe('a5a5');
  });

  // The ring-3 int 0x80 is a trap: it runs, and its slice ends after it with the recorded
  // interrupt. Re-execution used to count it as not run (as a fault), so a chunk driven from its
  // start (every seek of a lazy-rows trace, a re-recording) stopped one instruction short there.
  it('recorded, a seek past the slice that ends in a software interrupt (the ring-3 int 0x80) drives its chunk through it', async () => {
    const path = join(dir, 'trap.trace');
    const t = EmulatorTarget.open(guest, { ramBytes: 64 << 20, cpus: 1, disks: [{ path: disk }] });
    open.push(t);
    t.record(new EmulatorRecorder(path, { guest: 'guest.elf', symbols: guest, rows: 'lazy' }));
    expect((await t.caps.execution!.resume()).reason).toEqual({ kind: 'exited', code: 1 });
    t.close();
    const reader = TraceReader.open(path);
    const m = new ReplayMachine(reader);
    try {
      expect(reader.lazyRows).toBe(true);
      const int80 = reader.inputs(reader.first, reader.end + 1).find((i) => i.kind === 'interrupt' && i.detail.vector === 0x80)!;
      // the int itself, then the handler's first instruction: its chunk driven from its start
      for (const s of [int80.seq - 1, int80.seq + 1]) {
        m.seek(s);
        expect(m.registers(0, ['rip']).get('rip')).toBe(reader.step(s).pc);
      }
    } finally {
      m.close();
      reader.close();
    }
  });

  // Its #DE and int 0x80 are delivered as their slices end, before the slices' end checkpoints: a
  // re-recording gives them there too (they used to come at the next slice start, after the
  // checkpoint: its esp was the frame's size off). Recorded with memory rows, taking back the
  // faulting instruction's hook call at the slice's end keeps the frame's writes (it dropped them
  // once: the re-recording then counted more writes than the recording).
  for (const rows of ['lazy', 'eager'] as const) {
    it(`recorded (${rows}), its exceptions and int 0x80 re-execute to the recorded history (dbg traces --verify)`, async () => {
      const path = join(dir, `verify-${rows}.trace`);
      const t = EmulatorTarget.open(guest, { ramBytes: 64 << 20, cpus: 1, disks: [{ path: disk }] });
      open.push(t);
      t.record(new EmulatorRecorder(path, { guest: 'guest.elf', symbols: guest, rows }));
      expect((await t.caps.execution!.resume()).reason).toEqual({ kind: 'exited', code: 1 });
      t.close();
      const reader = TraceReader.open(path);
      try {
        expect(reader.inputs(reader.first, reader.end + 1).filter((i) => i.detail.inSlice === true).length).toBeGreaterThan(1);
        expect((await verifyTrace(reader)).difference).toBeUndefined();
      } finally {
        reader.close();
      }
    });
  }

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

/** QEMU's name (sendkey) of the key typing `ch` on a US keyboard, with shift- for capitals and symbols. */
function qcode(ch: string): string {
  const named: Record<string, string> = { ' ': 'spc', '\n': 'ret', '\b': 'backspace', ',': 'comma', '.': 'dot', '!': 'shift-1', '?': 'shift-slash' };
  if (named[ch]) return named[ch]!;
  if (/^[a-z0-9]$/.test(ch)) return ch;
  if (/^[A-Z]$/.test(ch)) return `shift-${ch.toLowerCase()}`;
  throw new Error(`no qcode for ${JSON.stringify(ch)}`);
}

/** Wait until `done()` holds, up to 30 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600 && !done(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!done()) throw new Error(`timed out waiting for ${what}`);
}

/**
 * `kernel` under QEMU with `text` typed through its monitor's sendkey once COM1 says ready: COM1,
 * and the CGA text buffer (4000 bytes at 0xb8000, pmemsave) once every key has echoed there.
 */
async function qemuTyped(kernel: string, text: string, echoes: number): Promise<{ serial: string; cga: Buffer }> {
  const sock = join(dir, 'monitor.sock');
  const dump = join(dir, 'cga.bin');
  const q = spawn('qemu-system-i386', ['-kernel', kernel, '-serial', 'stdio', '-display', 'none', '-m', '64', '-monitor', `unix:${sock},server=on,wait=off`]);
  let serial = '';
  q.stdout.on('data', (b: Buffer) => (serial += b.toString('latin1')));
  try {
    await until(() => serial.includes('ready\n'), "the guest's ready line");
    const mon = createConnection(sock);
    let reply = '';
    mon.on('data', (b: Buffer) => (reply += b.toString('latin1')));
    const command = async (line: string): Promise<void> => {
      const prompts = reply.split('(qemu) ').length;
      mon.write(`${line}\n`);
      await until(() => reply.split('(qemu) ').length > prompts, `QEMU's answer to ${line}`);
    };
    await until(() => reply.includes('(qemu) '), "QEMU's monitor");
    for (const ch of text) await command(`sendkey ${qcode(ch)} 10`);
    await until(() => serial.length >= 'ready\n'.length + echoes, 'the echo of every key');
    await command(`pmemsave 0xb8000 4000 "${dump}"`);
    mon.destroy();
    return { serial, cga: readFileSync(dump) };
  } finally {
    q.kill();
  }
}

describe('keys typed on the PS/2 keyboard, against QEMU', () => {
  // As arjun024/mkeykernel does: the 8259A remapped, IRQ 1 at int 0x21, the keys echoed in CGA text.
  it('reach a guest on int 0x21 through the 8259A and echo on the CGA text screen as QEMU shows them after sendkey', async () => {
    const k = build('keys', ['boot.S', 'keys.c']);
    const text = 'Hi dbg, 42!\nok?\bx';
    const t = EmulatorTarget.open(k, { ramBytes: 64 << 20 });
    open.push(t);
    expect((await t.caps.execution!.resume()).reason.kind).toBe('halted'); // sti; hlt with nothing to wake it
    expect(t.machine.console()).toBe('ready\n');
    t.machine.keyboardInput(scanCodes(text) as number[]);
    expect((await t.caps.execution!.resume()).reason.kind).toBe('halted');
    expect(t.machine.console()).toBe(`ready\n${text}`);
    const screen = t.machine.screen();
    expect(screen.lines.slice(0, 3).map((l) => l.trimEnd())).toEqual(['dbg keys: type here', 'Hi dbg, 42!', 'okx']);
    expect(screen.cursor).toBe(2 * 80 + 3);
    const q = await qemuTyped(k, text, text.length);
    expect(q.serial).toBe(`ready\n${text}`);
    // every character and attribute byte of the 80x25 screen
    expect(t.machine.readPhysical(0xb8000n, 4000).equals(q.cga)).toBe(true);
  });
});

/** A 32-bit multiboot guest from GNU assembly. */
function asmGuest(name: string, body: string): string {
  const f = join(dir, `${name}.S`);
  writeFileSync(f, `.text\n.align 4\n.long 0x1badb002, 0, -0x1badb002\n.globl _start\n_start:\n${body}\n`);
  return build(name, [f]);
}

// Writes a pattern, reads it back and sends the bytes to COM1: physical 0x40000000 (past 64 MiB of
// RAM) with paging off; then with 4 MiB pages, the same physical page through virtual 0x800000
// (below the end of RAM) and 0xc0000000 (above), and physical 0xfec00000-0xff000000 (the I/O APIC,
// the local APIC, nothing at 0xfef00000) through virtual 0xc0400000.
const OPEN_BUS = `movl $0x3f0000, %esp
  movl $0x40000000, %esi
  movl $0x11223344, (%esi)
  movl (%esi), %eax
  call out4
  movl $0x200000, %edi
  xorl %eax, %eax
  movl $1024, %ecx
  rep stosl
  movl $0x83, 0x200000
  movl $0x40000083, 0x200000 + 2*4
  movl $0x40000083, 0x200000 + 0x300*4
  movl $0xfec00083, 0x200000 + 0x301*4
  movl %cr4, %eax
  orl $0x10, %eax
  movl %eax, %cr4
  movl $0x200000, %eax
  movl %eax, %cr3
  movl %cr0, %eax
  orl $0x80000000, %eax
  movl %eax, %cr0
  movl $0x800000, %esi
  movl $0x55667788, (%esi)
  movl (%esi), %eax
  call out4
  movl $0xc0000000, %esi
  movb $0x99, (%esi)
  movl (%esi), %eax
  call out4
  movl 0xc0600030, %eax
  call out4
  movl 0xc0700000, %eax
  call out4
  movb $0, %al
  outb %al, $0xf4
1: hlt
  jmp 1b
out4:
  movl $0x3f8, %edx
  movl $4, %ecx
2: outb %al, %dx
  shrl $8, %eax
  loop 2b
  ret`;

describe('open bus: guest-physical addresses past RAM where no device is', () => {
  // A PC's bus master-aborts there: reads give all ones. QEMU 7.2 reads 0 (unassigned_mem_read);
  // dbg keeps to the hardware, as it does for unclaimed I/O ports.
  it('read as all ones and ignore writes, with paging off and through pages mapped below and above the end of RAM; a device mapped elsewhere answers', async () => {
    const k = asmGuest('openbus', OPEN_BUS);
    const lapicVersion = '14000500'; // 0x00050014, little-endian: what both machines' local APIC reports
    const d = await dbg(k, 1);
    expect(d.stop).toBe('{"kind":"exited","code":1}');
    expect(Buffer.from(d.console, 'latin1').toString('hex')).toBe(`${'ff'.repeat(12)}${lapicVersion}ffffffff`);
    expect(Buffer.from(qemu(k), 'latin1').toString('hex')).toBe(`${'00'.repeat(12)}${lapicVersion}00000000`);
  });

  it('code fetched from open bus stops the run naming the address', async () => {
    const d = await dbg(asmGuest('openbus-fetch', 'movl $0x40000000, %eax\njmp *%eax'), 1);
    expect(d.stop).toContain('"fault":"instruction fetch from unmapped memory at 0x40000000 (physical 0x40000000, outside guest RAM of 0x4000000 bytes)"');
  });
});

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
