import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { qemuSample } from '../helpers/repo.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { isDbgError } from '../../src/common/errors.js';
import { AP_START_BLOCK, asmGuest64 } from './asm-guest.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-emu-'));
const open: EmulatorTarget[] = [];
afterAll(() => open.forEach((t) => t.close()));

function boot(path: string, opts: ConstructorParameters<typeof Object>[0] = {}): EmulatorTarget {
  const t = EmulatorTarget.open(path, opts as never);
  open.push(t);
  return t;
}

/** An ELF64 kernel from assembly (GNU as syntax), linked at 1 MiB. */
const elf64 = (name: string, asm: string): string => asmGuest64(dir, name, asm);

const facts = JSON.parse(readFileSync(qemuSample('facts.json'), 'utf8'));

describe('the QEMU fixture kernel (multiboot, a.out kludge)', () => {
  it('boots to its panic with QEMU state: console, registers, jiffies, procs', async () => {
    const t = boot(qemuSample('kernel.elf'), { ramBytes: 32 << 20, cpus: 2 });
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.caps.console!.consoleText()).toBe(readFileSync(qemuSample('qemu-console.txt'), 'latin1'));
    const q = facts.cpus[0].qemu_info_registers.registers;
    const r = t.registers(1);
    for (const [name, key] of [['rax', 'RAX'], ['rbx', 'RBX'], ['rcx', 'RCX'], ['rdx', 'RDX'], ['rsi', 'RSI'], ['rdi', 'RDI'], ['rbp', 'RBP'], ['rsp', 'RSP'],
      ['r8', 'R8'], ['r9', 'R9'], ['r10', 'R10'], ['r11', 'R11'], ['r12', 'R12'], ['r13', 'R13'], ['r14', 'R14'], ['r15', 'R15'], ['rip', 'RIP'], ['eflags', 'RFL'], ['cr0', 'CR0'], ['cr2', 'CR2'], ['cr3', 'CR3'], ['cr4', 'CR4'], ['efer', 'EFER']]) {
      expect(`${name}=0x${r.get(name)!.toString(16)}`).toBe(`${name}=${q[key]}`);
    }
    const seg = facts.cpus[0].qemu_info_registers.segments;
    expect(`0x${r.get('gdtr_base')!.toString(16)} 0x${r.get('gdtr_limit')!.toString(16)}`).toBe(`${seg.GDT.base} ${seg.GDT.limit}`);
    expect(`0x${r.get('idtr_base')!.toString(16)} 0x${r.get('idtr_limit')!.toString(16)}`).toBe(`${seg.IDT.base} ${seg.IDT.limit}`);
    for (const s of ['cs', 'ss', 'ds', 'es', 'fs', 'gs']) expect(`${s} 0x${r.get(s)!.toString(16)}`).toBe(`${s} ${seg[s.toUpperCase()].selector}`);
    const jiffies = t.readVirtual(BigInt(facts.kernel.symbols.jiffies.address), 8).readBigUInt64LE(0);
    expect(jiffies).toBe(200000n);
    const procs = t.readVirtual(0xffffffffc0005060n, 336);
    expect(procs.subarray(2 * 56, 3 * 56).toString('hex')).toBe(
      '11000000000000006b776f726b65722f75343a31000000000000000000000000985000c0ffffffff405100c0ffffffff6804010000000000',
    );
    // translations through the guest's page tables: 4K, 2M, 1G pages
    expect(t.translate(0xffff888001234560n).phys).toBe(0x1234560n);
    expect(t.readVirtual(0xffff888001234560n, 32).toString('latin1')).toBe('fixture marker at phys 0x1234560');
    expect(t.translate(0xffffffffc000d000n).phys).toBeUndefined();
    // vCPU 1 was never started
    expect(t.threads()[1]!.state).toBe('waiting for start');
  });

  it('gives the same thread list while no vCPU changes state, a new one when one does', async () => {
    const t = boot(qemuSample('kernel.elf'), { ramBytes: 32 << 20, cpus: 2 });
    const before = t.threads();
    expect(before.map((th) => th.state)).toEqual(['stopped', 'waiting for start']);
    expect(t.threads()).toBe(before); // the GDB server's qXfer:threads document is made once per list
    await t.caps.execution!.resume(); // vCPU 0 starts vCPU 1, and the kernel halts
    const after = t.threads();
    expect(after).not.toBe(before);
    expect(after.map((th) => th.state)).not.toEqual(['stopped', 'waiting for start']);
    expect(t.threads()).toBe(after);
  });

  it('breakpoints by symbol, step, and a write watchpoint on jiffies', async () => {
    const t = boot(qemuSample('kernel.elf'), { ramBytes: 32 << 20 });
    const ev = t.addSymbolBreakpoint('check_runqueue');
    let st = await t.caps.execution!.resume();
    expect(st.reason).toEqual({ kind: 'breakpoint', id: ev.id, addr: 0xffffffffc00016c2n });
    expect(st.pc).toBe(0xffffffffc00016c2n);
    const seq = st.seq!;
    st = await t.caps.execution!.step(1);
    expect(st.reason.kind).toBe('step');
    expect(st.seq).toBe(seq + 1n);
    expect(st.pc).not.toBe(0xffffffffc00016c2n);
    // A step the guest takes at once is its stop itself (the GDB server answers it without a
    // promise); a bad step throws at once, and leaves the machine stopped.
    const now = t.caps.execution!.step(1);
    expect(now).not.toBeInstanceOf(Promise);
    expect((now as Exclude<typeof now, Promise<unknown>>).seq).toBe(seq + 2n);
    expect(() => t.caps.execution!.step(1, 0)).toThrow('step count 0: expected a whole number of at least 1');
    expect(() => t.caps.execution!.step(7)).toThrow('thread 7 does not exist: the guest has vCPUs 1-1');
    expect(t.caps.execution!.running).toBe(false);
    const many = t.caps.execution!.step(1, 3);
    expect(many).not.toBeInstanceOf(Promise);
    expect((many as Exclude<typeof many, Promise<unknown>>).seq).toBe(seq + 5n);
    t.deleteEvent(ev.id);
    st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.caps.execution!.running).toBe(false);

    const t2 = boot(qemuSample('kernel.elf'), { ramBytes: 32 << 20 });
    const jiffies = 0xffffffffc0004030n;
    const w = t2.addWatchpoint(jiffies, 8, 'write');
    st = await t2.caps.execution!.resume();
    expect(st.reason).toMatchObject({ kind: 'watchpoint', id: w.id, addr: jiffies, access: 'write' });
    expect(t2.readVirtual(jiffies, 8).readBigUInt64LE(0)).toBe(1n);
    st = await t2.caps.execution!.resume();
    expect(t2.readVirtual(jiffies, 8).readBigUInt64LE(0)).toBe(2n); // resumed without re-running the write
    expect(w.hits).toBe(2);
  });
});

describe('ELF64 long-mode guests', () => {
  const hello = `
.globl _start
_start:
  lea msg(%rip), %rsi
1: movb (%rsi), %al
  test %al, %al
  jz 2f
  mov $0x3f8, %dx
  outb %al, %dx
  inc %rsi
  jmp 1b
2: movq $0, counter(%rip)
3: incq counter(%rip)
  cmpq $1000, counter(%rip)
  jne 3b
  cli
  hlt
msg: .asciz "hello from dbg\\n"
.data
.globl counter
counter: .quad 0
`;
  it('runs to hlt with console output; breakpoints, read/access/exec watchpoints', async () => {
    const k = elf64('hello', hello);
    const t = boot(k, { ramBytes: 8 << 20 });
    const counter = t.symbols.lookup('counter');
    const r = t.addWatchpoint(counter, 8, 'read');
    let st = await t.caps.execution!.resume();
    expect(t.caps.console!.consoleText()).toBe('hello from dbg\n');
    expect(st.reason).toMatchObject({ kind: 'watchpoint', access: 'read' });
    t.deleteEvent(r.id);
    const x = t.addWatchpoint(t.symbols.lookup('_start') + 0n, 1, 'exec');
    void x;
    const a = t.addWatchpoint(counter, 1, 'access');
    st = await t.caps.execution!.resume();
    expect(st.reason).toMatchObject({ kind: 'watchpoint', id: a.id });
    t.deleteEvent(a.id);
    st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.readVirtual(counter, 8).readBigUInt64LE(0)).toBe(1000n);
  });

  it('a higher-half ELF64 (p_vaddr != p_paddr) runs through the page tables dbg builds', async () => {
    const src = join(dir, 'hh.S');
    writeFileSync(src, `.globl _start, value\n_start:\n  lea value(%rip), %rax\n  movq $0x1234, (%rax)\n  mov %rax, %rbx\n  cli\n  hlt\n.data\nvalue: .quad 0\n`);
    const ld = join(dir, 'hh.ld');
    writeFileSync(ld, 'ENTRY(_start)\nSECTIONS {\n  . = 0xffffffff80100000;\n  .text : AT(0x100000) { *(.text) }\n  . = ALIGN(0x1000);\n  .data : AT(ADDR(.data) - 0xffffffff80000000) { *(.data) }\n}\n');
    execFileSync('gcc', ['-c', '-o', join(dir, 'hh.o'), src]);
    execFileSync('ld', ['-nostdlib', '-T', ld, '-o', join(dir, 'hh.elf'), join(dir, 'hh.o')]);
    const t = boot(join(dir, 'hh.elf'), { ramBytes: 8 << 20 });
    expect(t.kernel.kind).toBe('elf64');
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    const value = t.symbols.lookup('value');
    expect(value).toBe(0xffffffff80101000n);
    expect(t.translate(value).phys).toBe(0x101000n);
    expect(t.caps.physical!.readPhysical(0x101000n, 8).readBigUInt64LE(0)).toBe(0x1234n);
    expect(t.registers(1).get('rbx')).toBe(value);
  });

  it('writes memory and registers', async () => {
    const t = boot(elf64('hello2', hello), { ramBytes: 8 << 20 });
    t.caps.writeMemory!.writeVirtual(t.symbols.lookup('msg'), Buffer.from('bye\n\0'));
    t.caps.writeRegisters!.writeRegister(1, 'rbx', 0x1234n);
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.caps.console!.consoleText()).toBe('bye\n');
    expect(t.registers(1).get('rbx')).toBe(0x1234n);
  });

  it('two vCPUs interleave deterministically (identical pc traces)', async () => {
    const k = elf64('smp', `
.globl _start
_start:
  lea block(%rip), %rax
  mov $0x518, %dx
  outl %eax, %dx
  xor %ecx, %ecx
1: inc %ecx
  lock incq shared(%rip)
  cmp $3000, %ecx
  jne 1b
  cli
  hlt
ap:
  xor %ecx, %ecx
2: inc %ecx
  lock addq $2, shared(%rip)
  cmp $3000, %ecx
  jne 2b
  cli
  hlt
${AP_START_BLOCK}
.globl shared
shared: .quad 0
`);
    const trace = async (): Promise<string[]> => {
      const t = boot(k, { ramBytes: 8 << 20, cpus: 2, quantum: 777 });
      const pcs: string[] = [];
      // vCPU 1 can be stepped once vCPU 0's third instruction (out 0x518) has started it
      for (let i = 0; i < 60; i++) {
        const st = await t.caps.execution!.step(i < 3 ? 1 : 1 + (i % 2));
        pcs.push(`${st.thread}:${st.pc.toString(16)}:${st.seq}`);
      }
      await t.caps.execution!.resume();
      await t.caps.execution!.resume();
      expect(t.readVirtual(t.symbols.lookup('shared'), 8).readBigUInt64LE(0)).toBe(9000n);
      return pcs;
    };
    const a = await trace();
    const b = await trace();
    expect(a).toEqual(b);
    expect(new Set(a.map((x) => x.split(':')[0])).size).toBe(2);
  });
});

describe('bad input: a clear error or a fault stop, never a crash', () => {
  const codeOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(isDbgError(e)).toBe(true);
      return `${(e as { code: string }).code}: ${(e as Error).message}`;
    }
    return 'no error';
  };
  it('a non-ELF file', () => {
    const p = join(dir, 'junk.bin');
    writeFileSync(p, 'this is not a kernel');
    expect(codeOf(() => boot(p))).toMatch(/^bad-input: junk.bin: not an ELF file and no multiboot header in its first 8 KiB/);
  });
  it('an ELF for another architecture', () => {
    const p = join(dir, 'arm.elf');
    const b = Buffer.alloc(64);
    b.write('\x7fELF', 0, 'latin1');
    b[4] = 2; b[5] = 1; b[6] = 1;
    b.writeUInt16LE(2, 16);
    b.writeUInt16LE(183, 18);
    writeFileSync(p, b);
    expect(codeOf(() => boot(p))).toMatch(/^bad-input: arm.elf: an ELF file for machine 183 \(AArch64\)/);
  });
  it('segments outside RAM', () => {
    const s = join(dir, 'far.S');
    writeFileSync(s, '.globl _start\n_start: hlt\n');
    execFileSync('gcc', ['-c', '-o', join(dir, 'far.o'), s]);
    execFileSync('ld', ['-nostdlib', '-Ttext=0x40000000', '-e', '_start', '-o', join(dir, 'far.elf'), join(dir, 'far.o')]);
    expect(codeOf(() => boot(join(dir, 'far.elf'), { ramBytes: 8 << 20 }))).toMatch(/lies outside guest RAM/);
  });
  it('an invalid opcode, an unmapped fetch, a triple fault', async () => {
    const ud = boot(elf64('ud', '.globl _start\n_start: nop\n ud2\n'), { ramBytes: 8 << 20 });
    let st = await ud.caps.execution!.resume();
    expect(st.reason).toMatchObject({ kind: 'fault', pc: 0x100001n });
    expect((st.reason as { fault: string }).fault).toMatch(/invalid opcode \(#UD\) at 0x100001/);

    const nx = boot(elf64('jmp', '.globl _start\n_start: mov $0x7000000000, %rax\n jmp *%rax\n'), { ramBytes: 8 << 20 });
    st = await nx.caps.execution!.resume();
    expect(st.reason.kind).toBe('fault');
    expect((st.reason as { fault: string }).fault).toMatch(/0x7000000000/);

    const tf = boot(elf64('pf', '.globl _start\n_start: movq (0x7000000000), %rax\n'), { ramBytes: 8 << 20 });
    st = await tf.caps.execution!.resume();
    expect(st.reason.kind).toBe('fault');
    expect((st.reason as { fault: string }).fault).toMatch(/^triple fault: #PF page fault: read of 0x7000000000 not mapped by the page tables \(PDPTE\[448\] = 0x0 \(not present\)\), with no usable IDT gate/);
    expect(st.pc).toBe(0x100000n);
  });
});
